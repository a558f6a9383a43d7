"""python -m services.escalation"""
from services.runner import run_faust_service

from .app import build

if __name__ == "__main__":
    run_faust_service("escalation", build)
