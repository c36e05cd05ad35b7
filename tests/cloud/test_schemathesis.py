"""A bounded schemathesis run against the OpenAPI document: no input makes a server error.

Every operation gets a few generated cases (bodies and parameters from the document), called
through the app's ASGI stack with a team member's token. Event streams are left out (they never
end by design); they have their own tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings

from cloud_sim import Cloud
from cloud_sim.http import create_app
from cloud_sim.http.client import AsgiApiClient
from firmware_sim.kernel import World

from .conftest import SEED

if TYPE_CHECKING:
    import schemathesis
else:
    schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error

APP = create_app(Cloud(World(9)))
with AsgiApiClient(APP) as _client:
    _status, _seeded = _client.request("POST", "/fwsim/seed", json=SEED)
TOKEN = _seeded["users"]["dev@acme.io"]["access_token"]

schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path_regex=r"/events")


@schema.parametrize()
@settings(max_examples=3, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case: schemathesis.Case[Any]) -> None:
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    case.validate_response(response, checks=[not_a_server_error])
