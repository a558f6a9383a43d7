"""Kafka adapters: topic creation, JSON producing, Faust app construction."""
