"""A minimal local HTTP endpoint that answers SESv2 SendEmail (and SES GetSendQuota) at once.

Run as its own process so that it does not compete with the sender for the
GIL: `python bench/ses_endpoint.py PORT`. HTTP/1.1 with keep-alive, as
botocore's connection pool expects; every request body is read and dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import sys

_ids = itertools.count(1)
_QUOTA = (b"<GetSendQuotaResponse><GetSendQuotaResult><Max24HourSend>-1</Max24HourSend>"
          b"<MaxSendRate>100000</MaxSendRate><SentLast24Hours>0</SentLast24Hours>"
          b"</GetSendQuotaResult></GetSendQuotaResponse>")


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            if head.startswith(b"POST /v2/email/outbound-emails"):
                body = b'{"MessageId":"bench-%d"}' % next(_ids)
                kind = b"application/json"
            else:
                body, kind = _QUOTA, b"text/xml"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nx-amzn-RequestId: r\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
