"""Fake cloud instance metadata services and DMI trees: the outermost boundary of the cloud lookup.

The fake answers as the vendors document their services and refuses as they do: AWS IMDSv2 gives
a region only with a session token got by PUT (401 without), Google's server needs
``Metadata-Flavor: Google`` (403 without), Azure's needs ``Metadata: true`` and an
``api-version`` (400 without); Google and Azure refuse a request carrying ``X-Forwarded-For``
(one that came through a proxy).
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

DMI = {
    "aws": {"sys_vendor": "Amazon EC2", "product_name": "m7i.large", "bios_vendor": "Amazon EC2"},
    "gcp": {
        "sys_vendor": "Google",
        "product_name": "Google Compute Engine",
        "board_vendor": "Google",
        "bios_vendor": "Google",
    },
    "azure": {
        "sys_vendor": "Microsoft Corporation",
        "product_name": "Virtual Machine",
        "board_vendor": "Microsoft Corporation",
        "bios_vendor": "Microsoft Corporation",
        "chassis_asset_tag": "7783-7084-3265-9085",
    },
    "qemu": {"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"},
    "hyper-v": {
        "sys_vendor": "Microsoft Corporation",
        "product_name": "Virtual Machine",
        "chassis_asset_tag": "0000-0000-0000-0000",
    },
}
"""The DMI strings each kind of machine shows under /sys/class/dmi/id."""


def dmi_tree(root: Path, machine: str) -> Path:
    """Write the DMI files of ``machine`` (a key of ``DMI``) under ``root``; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in DMI[machine].items():
        (root / name).write_text(text + "\n")
    return root


class FakeMetadata:
    """The three vendors' metadata endpoints on one local server, with the answers to give.

    Args:
        server: The pytest-httpserver to answer on.
        aws_region: The region AWS names; ``gcp_zone`` and ``azure_location`` likewise.
    """

    def __init__(
        self,
        server: HTTPServer,
        *,
        aws_region: str = "eu-north-1",
        gcp_zone: str = "europe-west1-b",
        azure_location: str = "swedencentral",
    ) -> None:
        self.aws_region = aws_region
        self.gcp_zone = gcp_zone
        self.azure_location = azure_location
        self.tokens: list[str] = []
        self.server = server
        server.expect_request(re.compile("^/")).respond_with_handler(self._answer)

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """Every request the server saw: (method, path, status answered)."""
        return [
            (request.method, request.path, response.status_code)
            for request, response in self.server.log
        ]

    def _answer(self, request: Request) -> Response:
        path = request.path
        if path == "/latest/api/token":
            return self._aws_token(request)
        if path == "/latest/meta-data/placement/region":
            if request.method != "GET":
                return Response("", status=405)
            if request.headers.get("X-aws-ec2-metadata-token") not in self.tokens:
                return Response("", status=401)  # IMDSv2 only: no token, no answer
            return Response(self.aws_region, content_type="text/plain")
        if request.headers.get("X-Forwarded-For") is not None:
            return Response("proxied requests are refused", status=403)
        if path == "/computeMetadata/v1/instance/zone":
            if request.headers.get("Metadata-Flavor") != "Google":
                return Response("Missing Metadata-Flavor:Google header.", status=403)
            return Response(
                f"projects/123456789012/zones/{self.gcp_zone}", content_type="text/plain"
            )
        if path == "/metadata/instance/compute/location":
            if request.headers.get("Metadata") != "true":
                return Response('{"error": "Required metadata header not specified"}', status=400)
            if not request.args.get("api-version"):
                return Response(
                    '{"error": "Bad request. api-version was not specified"}', status=400
                )
            if request.args.get("format") != "text":
                return Response(
                    '{"error": "Bad request. format must be text for leaf values"}', status=400
                )
            return Response(self.azure_location, content_type="text/plain")
        return Response("not found", status=404)

    def _aws_token(self, request: Request) -> Response:
        if request.method != "PUT":
            return Response("", status=405)
        ttl = request.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return Response("", status=400)
        if request.headers.get("X-Forwarded-For") is not None:
            return Response("", status=403)  # IMDSv2 refuses token requests that were proxied
        token = secrets.token_urlsafe(32)
        self.tokens.append(token)
        return Response(token, content_type="text/plain")
