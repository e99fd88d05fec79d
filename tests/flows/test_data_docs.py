"""The Data Docs page a failing run's artifact links to: opened, it names the failing row."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from flows import reconcile_positions
from tests.flows.conftest import Incident


class VisibleText(HTMLParser):
    """The text a reader sees: no tags, scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def latest_artifact(key: str) -> str:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert artifacts, f"no artifact {key}"
    return str(artifacts[0].data)


def test_the_failing_runs_data_docs_link_opens_a_page_naming_the_failing_instrument(
    incident: Incident,
) -> None:
    summary = reconcile_positions("main")
    assert summary["failing_expectation_rows"] >= 1
    markdown = latest_artifact("expectations-positions-main")
    links = re.findall(r"\[[^\]]*Data Docs[^\]]*\]\(([^)]+)\)", markdown)
    assert links, markdown
    url = urlparse(links[0])
    assert url.scheme == "file"
    page = Path(unquote(url.path))
    assert page.is_relative_to(incident.folder / "state" / "data-docs")
    reader = VisibleText()
    reader.feed(page.read_text(encoding="utf-8"))
    text = " ".join(reader.parts)
    # The incident's DOGE position has lever "" and leverage-info fails: lever > 0 fails.
    assert "DOGE-USDT-SWAP" in text
    assert "lever" in text
