"""How a service process ends when its configuration is wrong: the message, and exit 78.

78 (EX_CONFIG) tells the supervisor not to restart: a bad file or environment does
not get better by trying again. Every other failure exits otherwise and is restarted.
"""
from __future__ import annotations

import sys
from typing import Callable

from shared.config_loader import ConfigError
from shared.kafka.admin import TopologyError
from shared.kafka.liveness import CONFIG_ERROR
from shared.settings import SettingsError


def run_main(main: Callable[[], None]) -> None:
    try:
        main()
    except (ConfigError, SettingsError, TopologyError) as exc:
        print(str(exc), file=sys.stderr, flush=True)
        sys.exit(CONFIG_ERROR)
