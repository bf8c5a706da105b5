"""Push the generated boards into an existing Grafana with grafana-client.

For a Grafana that is not provisioned from this repository: the folder is found by title or
created; the data sources are looked up by name ("InfluxDB", "Tickets") and their uids put
into the boards in place of the provisioned ones; each board is saved with the version it has
in Grafana now (``overwrite: false``), so an edit made in Grafana between our read and our
write is refused (HTTP 412) instead of silently lost. A token without the rights needed gets
one clear error naming what was refused.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from dashboards.generate import GENERATED, load
from dashboards.queries import INFLUX_NAME, INFLUX_UID, TICKETS_NAME, TICKETS_UID

log = logging.getLogger(__name__)

FOLDER_UID: Final = "ruralwater"
MESSAGE: Final = "python -m dashboards deploy"
RIGHTS: Final = ("a service account token with the Editor role (Admin to create the folder), "
                 "or folders:create, dashboards:write and datasources:read")


class DeployError(RuntimeError):
    """The deployment stopped; the message says why and what to do."""


@dataclass(frozen=True)
class Deployed:
    uid: str
    title: str
    version: int
    url: str
    created: bool

    def __str__(self) -> str:
        action = "created" if self.created else "updated"
        return f"{action} {self.title} ({self.uid}) version {self.version}: {self.url}"


def _explain(action: str, exc: GrafanaException) -> DeployError:
    response = exc.response if isinstance(exc.response, dict) else {}
    said = response.get("message") or str(exc)
    if isinstance(exc, GrafanaUnauthorizedError) or exc.status_code == 401:
        return DeployError(f"{action}: Grafana rejected the token (401: {said})")
    if exc.status_code == 403:
        return DeployError(f"{action}: the token lacks the rights (403: {said}); it needs "
                           f"{RIGHTS}")
    return DeployError(f"{action}: Grafana answered {exc.status_code}: {said}")


def _call(action: str, request: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return request(*args, **kwargs)
    except GrafanaException as exc:
        raise _explain(action, exc) from exc


def _datasource_uids(api: GrafanaApi, needed: set[str]) -> dict[str, str]:
    """Provisioned uid -> the uid the named data source has in this Grafana."""
    mapping = {}
    for name, provisioned in ((INFLUX_NAME, INFLUX_UID), (TICKETS_NAME, TICKETS_UID)):
        if provisioned not in needed:
            continue
        try:
            found = api.datasource.get_datasource_by_name(name)
        except GrafanaClientError as exc:
            if exc.status_code == 404:
                raise DeployError(
                    f'no data source named "{name}" in Grafana: create it (see '
                    "dashboards/provisioning/datasources/ruralwater.yaml)") from exc
            raise _explain(f'looking up data source "{name}"', exc) from exc
        mapping[provisioned] = str(found["uid"])
    return mapping


def _used_datasources(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {str(node["uid"])} if {"type", "uid"} <= node.keys() else set()
        for value in node.values():
            found |= _used_datasources(value)
        return found
    if isinstance(node, list):
        return set().union(*(_used_datasources(item) for item in node)) if node else set()
    return set()


def substitute_datasources(node: Any, uids: Mapping[str, str]) -> Any:
    """A copy of the board with every data source reference pointed at ``uids``."""
    if isinstance(node, dict):
        replaced = {key: substitute_datasources(value, uids) for key, value in node.items()}
        if {"type", "uid"} <= node.keys() and node["uid"] in uids:
            replaced["uid"] = uids[node["uid"]]
        return replaced
    if isinstance(node, list):
        return [substitute_datasources(item, uids) for item in node]
    return copy.copy(node)


def ensure_folder(api: GrafanaApi, title: str) -> str:
    """The uid of the folder titled ``title``, created when missing."""
    for folder in _call("listing folders", api.folder.get_all_folders):
        if folder.get("title") == title:
            return str(folder["uid"])
    log.info("creating folder %r", title)
    created = _call(f'creating folder "{title}"', api.folder.create_folder, title,
                    uid=FOLDER_UID)
    return str(created["uid"])


def _current_version(api: GrafanaApi, uid: str) -> int | None:
    try:
        existing = api.dashboard.get_dashboard(uid)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise _explain(f"reading board {uid}", exc) from exc
    except GrafanaException as exc:
        raise _explain(f"reading board {uid}", exc) from exc
    return int(existing["dashboard"].get("version") or existing["meta"].get("version") or 0)


def save_board(api: GrafanaApi, board: Mapping[str, Any], folder_uid: str) -> Deployed:
    uid = str(board["uid"])
    version = _current_version(api, uid)
    payload = dict(board)
    payload["id"] = None
    if version is not None:
        payload["version"] = version
    else:
        payload.pop("version", None)
    try:
        saved = api.dashboard.update_dashboard({
            "dashboard": payload, "folderUid": folder_uid, "overwrite": False,
            "message": MESSAGE})
    except GrafanaClientError as exc:
        if exc.status_code == 412:
            said = exc.response.get("message") if isinstance(exc.response, dict) else exc
            raise DeployError(
                f"board {uid} was changed in Grafana after deploy read version {version} "
                f"(412: {said}); look at the change, then run deploy again") from exc
        raise _explain(f"saving board {uid}", exc) from exc
    except GrafanaException as exc:
        raise _explain(f"saving board {uid}", exc) from exc
    return Deployed(uid, str(board.get("title", uid)), int(saved.get("version", 0)),
                    str(saved.get("url", "")), created=version is None)


def deploy_boards(url: str, token: str, folder: str, *, timeout_s: float = 10.0,
                  boards: Mapping[str, Mapping[str, Any]] | None = None) -> list[Deployed]:
    """Deploy ``boards`` (default: the committed generated JSON) into the Grafana at ``url``."""
    to_deploy = boards if boards is not None else load(GENERATED)
    if not to_deploy:
        raise DeployError(f"no boards in {GENERATED}: run python -m dashboards generate")
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    needed = set().union(*(_used_datasources(board) for board in to_deploy.values()))
    try:
        uids = _datasource_uids(api, needed)
        folder_uid = ensure_folder(api, folder)
        return [save_board(api, substitute_datasources(board, uids), folder_uid)
                for board in to_deploy.values()]
    except niquests.exceptions.ConnectionError as exc:
        raise DeployError(f"cannot reach Grafana at {url}: {exc}") from exc
