"""FreeSWITCH channel variables of calls that tests of several packages read the same way."""
from __future__ import annotations

from pbx_codes.model import Observation
from pbx_codes.observers.freeswitch import CallMemory, observation_from_variables


def failover_to_gateway_marked_down() -> tuple[Observation, Observation]:
    """Gateway 1 (`lifecell`) answered 503 (a B-leg, an INVITE; its copies stay on A); the bridge to gateway 2
    (`backup`) created no leg because it was marked down. The B-leg's and then the A-leg's observation, read
    through one call memory as the listener reads them."""
    memory = CallMemory()
    b1 = {"uuid": "b1", "direction": "outbound", "originator": "a", "call_uuid": "a", "sip_gateway_name": "lifecell",
          "sip_term_status": "503", "sip_invite_failure_status": "503", "sip_reply_port": "5090",
          "sip_hangup_disposition": "recv_refuse", "hangup_cause": "NORMAL_TEMPORARY_FAILURE"}
    a = {"uuid": "a", "direction": "inbound", "hangup_cause": "NORMAL_CLEARING",
         "sip_hangup_disposition": "send_refuse",
         "last_bridge_proto_specific_hangup_cause": "sip:503", "last_bridge_hangup_cause": "NORMAL_TEMPORARY_FAILURE",
         "sip_invite_failure_status": "503", "originate_failed_cause": "GATEWAY_DOWN", "current_application": "bridge",
         "current_application_data": "sofia/gateway/backup/0501234567"}
    memory.learn(b1)
    first = observation_from_variables(b1, memory=memory)
    memory.record(b1, first)
    return first, observation_from_variables(a, memory=memory)
