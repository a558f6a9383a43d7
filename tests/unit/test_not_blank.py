"""The schema's "not blank" pattern keeps exactly what str.strip() keeps, in every engine."""
from __future__ import annotations

import re
import sys

import pytest
from pydantic import ValidationError

from services.ingestion.formats.pagerduty import PagerDutyPayload
from shared.messages import NOT_BLANK, NativeAlert


def test_the_pattern_is_the_complement_of_python_whitespace_over_every_code_point():
    matcher = re.compile(NOT_BLANK)
    differ = [hex(code) for code in range(sys.maxunicode + 1)
              if (matcher.fullmatch(chr(code)) is None) != chr(code).isspace()]
    assert differ == []


@pytest.mark.parametrize("blank", ["\x0b", "\x85", "\x1c", "\u3000", " \t "])
def test_a_blank_summary_is_refused_by_the_native_and_pagerduty_models(blank):
    with pytest.raises(ValidationError):
        NativeAlert(service="billing", summary=blank)
    with pytest.raises(ValidationError):
        PagerDutyPayload(summary=blank, source="host", severity="info")
    assert NativeAlert(service="billing", summary=f"{blank}disk full").summary.endswith("disk full")
