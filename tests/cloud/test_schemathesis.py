"""A bounded schemathesis run against the OpenAPI document: no input makes a server error.

Every operation gets generated cases - valid ones and, in negative mode, ones that break the
document's schema - called through the app's ASGI stack with a team member's token and the
admin token (the ``/fwsim`` namespace behind it is in the document too). Event streams are left
out (they never end by design); they have their own tests. Our own strategies (surrogates,
Unicode digits, huge numbers and bodies) are in test_no_server_errors.py; the long campaign over
sockets is benchmarks/fuzz_rest.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings

from cloud_sim import Cloud
from cloud_sim.http import AdminAccess, ApiConfig, create_app
from cloud_sim.http.client import AsgiApiClient
from firmware_sim.kernel import World

from .conftest import SEED

if TYPE_CHECKING:
    import schemathesis
else:
    schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error

ADMIN_TOKEN = "fwsim-schemathesis-admin-token"
APP = create_app(Cloud(World(9)), config=ApiConfig(admin=AdminAccess(True, ADMIN_TOKEN)))
with AsgiApiClient(APP) as _client:
    _status, _seeded = _client.request("POST", "/fwsim/seed", json=SEED,
                                       headers={"X-Fwsim-Admin-Token": ADMIN_TOKEN})
TOKEN = _seeded["users"]["dev@acme.io"]["access_token"]

# the event streams never end by design (GET); publishing an event (POST) is fuzzed like the rest
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(
    method="GET", path_regex=r"^/v1/.*events")
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE,
                                       schemathesis.GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case: schemathesis.Case[Any]) -> None:
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}",
                                  "X-Fwsim-Admin-Token": ADMIN_TOKEN})
    case.validate_response(response, checks=[not_a_server_error])
