"""python -m services.metrics"""
from services.runner import run_faust_service

from .app import build

if __name__ == "__main__":
    run_faust_service("metrics", build)
