"""What comes back after a send: SES bounces, complaints, deliveries and unsubscribes.

`notifications` reads SES's JSON into store-ready feedback, `sync`
applies a queue's messages to the store, `sqs` is the queue adapter.
"""
