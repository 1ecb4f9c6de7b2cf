"""paylimit: real-time daily payment-transaction limit monitoring on Apache Kafka."""
