"""The pure domain core: no Kafka, Faust, asyncpg, HTTP, clock or environment reads.

Everything here is a function of its arguments, so the whole incident lifecycle
is unit-tested without a broker or a database.
"""
