"""The Label Studio server where clinicians review generated pairs. Its address from the resource or
$LABEL_STUDIO_URL; its API token only from an environment variable (LABEL_STUDIO_API_KEY by default),
never from run config."""

import os
from typing import Optional

import dagster as dg
from pydantic import Field

from ragtune.review.label_studio import connect, ensure_project


class LabelStudioResource(dg.ConfigurableResource):
    url: Optional[str] = Field(default=None, description="The server, e.g. http://localhost:8080 (default: $LABEL_STUDIO_URL).")
    api_key_env: str = Field(default="LABEL_STUDIO_API_KEY", description="The environment variable holding the API token.")
    project_title: str = Field(default="ragtune expert review", description="The project the pairs are pushed to (created if missing).")

    def server(self) -> str:
        return (self.url or os.environ.get("LABEL_STUDIO_URL") or "").rstrip("/")

    def configured(self) -> bool:
        return bool(self.server() and os.environ.get(self.api_key_env))

    def client(self):
        """An SDK client; a clear error when the server or token is not set."""
        if not self.server():
            raise ValueError("no Label Studio server: set LABEL_STUDIO_URL (e.g. http://localhost:8080) or the label_studio resource's url")
        if not os.environ.get(self.api_key_env):
            raise ValueError(f"no Label Studio token: put your API token (Label Studio: Account & Settings) in ${self.api_key_env}")
        return connect(self.server(), os.environ[self.api_key_env])

    def project(self) -> tuple[object, int]:
        """(client, project id): the project named project_title, created with ragtune's labelling config if missing."""
        client = self.client()
        return client, ensure_project(client, self.project_title)

    def task_url(self, project_id: int) -> str:
        return f"{self.server()}/projects/{project_id}/data"
