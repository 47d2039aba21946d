"""Configuration from the environment (pydantic-settings). Every variable is in the README."""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_WORKFLOWS = "examples.pipelines:workflows"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    database_url: str = Field(default="sqlite:///signoff.db", alias="SIGNOFF_DATABASE_URL")
    workflows: str = Field(default=DEFAULT_WORKFLOWS, alias="SIGNOFF_WORKFLOWS")
    host: str = Field(default="0.0.0.0", alias="SIGNOFF_HOST")
    port: int = Field(default=3000, ge=1, le=65535, alias="SIGNOFF_PORT")
    channel: str = Field(default="#signoff", alias="SIGNOFF_CHANNEL")
    poll_seconds: float = Field(default=5.0, gt=0, alias="SIGNOFF_POLL_SECONDS")
    workers: int = Field(default=8, ge=1, le=256, alias="SIGNOFF_WORKERS")
    log_level: str = Field(default="INFO", alias="SIGNOFF_LOG_LEVEL")

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("workflows")
    @classmethod
    def _workflows(cls, value: str) -> str:
        for spec in split_specs(value):
            module, _, attribute = spec.partition(":")
            if not module or not attribute:
                raise ValueError(f"{spec!r} is not of the form module:attribute")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @property
    def workflow_specs(self) -> list[str]:
        return split_specs(self.workflows)

    @property
    def has_slack_credentials(self) -> bool:
        return self.slack_bot_token is not None and (
            self.slack_signing_secret is not None or self.slack_app_token is not None
        )


def split_specs(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


class SettingsError(Exception):
    """A bad setting: the message is one line naming the variable and what is wrong."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        alias = Settings.model_fields[field].alias if field in Settings.model_fields else field
        raise SettingsError(f"bad setting {alias or field}: {first['msg']}") from None
