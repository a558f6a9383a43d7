"""Moving to more partitions on a new cluster: export the tables' state, then replay it.

    python -m services.repartition export FILE   (old cluster, services stopped)
    python -m services.repartition replay FILE   (new cluster, topics created, services not started)

See the README, "Growing past one machine", for the procedure.
"""
