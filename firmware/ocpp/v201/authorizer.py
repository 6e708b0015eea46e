"""The 2.0.1 station's part in authorization (firmware/authorization.py decides):

- a backend: ``check`` answers a token by Authorize to the CSMS (C01), or from the local
  list and cache first when LocalPreAuthorize is set (C10, D01), or by the offline
  policy while offline (C12, C13: LocalAuthorizeOffline, OfflineTxForUnknownIdEnabled);
  answers are cached for AuthCacheCtrlr.LifeTime;
- a source: RequestStartTransaction (F01/F02) becomes ``request_start`` with source
  "app", checked first only when AuthCtrlr.AuthorizeRemoteStart is set;
- a sink: every accepted start gives the transaction its idToken, trigger reason and
  remoteStartId (E02/E03: Started or Updated with triggerReason Authorized or
  RemoteStart).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware.authorization import AuthDecision, Authorization, Verdict
from firmware.ocpp.link import CallFailed, FramedLink
from firmware.ocpp.v201 import mapping
from firmware.ocpp.v201.auth import AuthStore, Decision
from firmware.ocpp.v201.device_model import DeviceModel
from firmware.ocpp.v201.transactions import Transactions

log = logging.getLogger("chargebay.ocpp")


@dataclass(frozen=True)
class RemoteStart:
    """A RequestStartTransaction on its way through authorization."""

    id_token: dict[str, Any]  # IdTokenType as the CSMS sent it (camelCase)
    remote_start_id: int
    group_id_token: dict[str, Any] | None


def _personal(info: dict[str, Any] | None
              ) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """IdTokenInfo's text for the driver (personalMessage: a tariff or a greeting, C01 /
    I-block) as (language, text), and the holder's languages (language1, language2)."""
    info = info or {}
    message = info.get("personalMessage") or {}
    texts = ((str(message.get("language") or ""), str(message["content"])),) \
        if message.get("content") else ()
    languages = tuple(str(info[k]) for k in ("language1", "language2") if info.get(k))
    return texts, languages


class Authorizer:
    def __init__(self, authorization: Authorization, store: AuthStore, model: DeviceModel,
                 tx: Transactions, now: Callable[[], float],
                 link: Callable[[], FramedLink | None],
                 note: Callable[[str], None]) -> None:
        self.authorization = authorization
        self.store = store
        self.model = model
        self.tx = tx
        self.now = now
        self.link = link  # the link while online (boot accepted), else None
        self.note = note
        self._remote: dict[int, RemoteStart] = {}
        authorization.use_backend(self)
        self.unsubscribe = authorization.subscribe(self.on_decision)

    # --- backend (C01, C10-C13) ------------------------------------------------------------

    async def check(self, evse_id: int, token: str, source: str) -> Verdict:
        remote = self._remote.get(evse_id)
        if source == "app" and remote is not None and remote.id_token["idToken"] == token:
            kind = remote.id_token.get("type", "Central")
        else:
            kind = mapping.id_token_type(source)
        decision = await self.authorize_token(token, kind)
        group = decision.group_id_token
        return Verdict(decision.status, group.get("idToken") if group else None,
                       decision.source, *_personal(decision.info))

    async def authorize_token(self, token: str, kind: str = "ISO14443") -> Decision:
        id_token = {"idToken": token, "type": kind}
        now = self.now()
        use_list = self.model.get_bool("LocalAuthListCtrlr", "Enabled")
        use_cache = self.model.get_bool("AuthCacheCtrlr", "Enabled")
        link = self.link()
        if link is None:
            return self.store.offline(
                token, now, local_offline=self.model.get_bool("AuthCtrlr",
                                                              "LocalAuthorizeOffline"),
                unknown_ok=self.model.get_bool("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
                use_list=use_list, use_cache=use_cache)
        if self.model.get_bool("AuthCtrlr", "LocalPreAuthorize"):
            known = self.store.local(token, now, use_list, use_cache)
            if known is not None and known.status == "Accepted":
                return known
        try:
            result = await link.call_raw("Authorize", {"idToken": id_token})
        except CallFailed as exc:
            log.warning("Authorize failed (%s): deciding offline", exc)
            return self.store.offline(token, now, local_offline=True, unknown_ok=False,
                                      use_list=use_list, use_cache=use_cache)
        info = result.get("idTokenInfo", {})
        if use_cache:
            self.store.remember(token, info, now,
                                self.model.get_int("AuthCacheCtrlr", "LifeTime"))
        return Decision(info.get("status", "Invalid"), info.get("groupIdToken"), "csms", info)

    # --- source: remote start (F01, F02) ------------------------------------------------------

    async def remote_start(self, evse_id: int, remote: RemoteStart) -> AuthDecision:
        """After RequestStartTransaction was answered Accepted (a handler never waits for
        the CSMS itself)."""
        token = remote.id_token["idToken"]
        checked = self.model.get_bool("AuthCtrlr", "AuthorizeRemoteStart")
        self._remote[evse_id] = remote
        try:
            decision = await self.authorization.request_start(
                evse_id, token, "app", vouched_by=None if checked else "csms")
        finally:
            self._remote.pop(evse_id, None)
        if not decision.accepted:
            self.note(f"OCPP: remote start for {token} not authorized")
        return decision

    # --- sink: the transaction's idToken ------------------------------------------------------

    def on_decision(self, decision: AuthDecision) -> None:
        if decision.action == "stop":
            if decision.accepted:  # its idToken goes with the StopAuthorized event (E06)
                self.tx.note_stop(decision.evse_id, {
                    "idToken": decision.token, "type": mapping.id_token_type(decision.source)})
            return
        if decision.action != "start":
            return
        if not decision.accepted:
            self.note(f"OCPP: card {decision.token} {decision.reason}")
            return
        remote = self._remote.get(decision.evse_id)
        if decision.source == "app" and remote is not None \
                and remote.id_token["idToken"] == decision.token:
            self.tx.note_authorization(decision.evse_id, remote.id_token, "RemoteStart",
                                       remote.remote_start_id, remote.group_id_token)
            self.note(f"OCPP: remote start on EVSE {decision.evse_id} for {decision.token}")
            return
        group = ({"idToken": decision.group, "type": "Central"}
                 if decision.group is not None else None)
        self.tx.note_authorization(decision.evse_id, {
            "idToken": decision.token, "type": mapping.id_token_type(decision.source)},
            "Authorized", None, group)
        self.note(f"OCPP: card {decision.token} accepted ({decision.basis})")
