"""Configuration from the environment (pydantic-settings). Every variable is in the README."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.db import UnsupportedDatabaseUrlError, database_kind, mask_url

if TYPE_CHECKING:
    from engine.db.base import BaseDb

DEFAULT_WORKFLOWS = "examples.pipelines:workflows"
DATABASE_URL_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")
# Without it an unroutable PostgreSQL host blocks start-up, migrate and /healthz for minutes.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10


class Settings(BaseSettings):
    """The bot's configuration, from the environment variables named by each field's alias."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    database_url: str = Field(default="sqlite:///signoff.db", alias="SIGNOFF_DATABASE_URL")
    workflows: str = Field(default=DEFAULT_WORKFLOWS, alias="SIGNOFF_WORKFLOWS")
    host: str = Field(default="0.0.0.0", alias="SIGNOFF_HOST")
    port: int = Field(default=3000, ge=1, le=65535, alias="SIGNOFF_PORT")
    sandbox_port: int = Field(default=3001, ge=1, le=65535, alias="SIGNOFF_SANDBOX_PORT")
    channel: str = Field(default="#signoff", alias="SIGNOFF_CHANNEL")
    poll_seconds: float = Field(default=5.0, gt=0, alias="SIGNOFF_POLL_SECONDS")
    workers: int = Field(default=8, ge=1, le=256, alias="SIGNOFF_WORKERS")
    # Delivered Slack outbox rows older than this are deleted (the outbox stays small).
    outbox_retention_days: float = Field(default=7.0, gt=0, alias="SIGNOFF_OUTBOX_RETENTION_DAYS")
    log_level: str = Field(default="INFO", alias="SIGNOFF_LOG_LEVEL")

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        value = value.strip()
        scheme = value.partition("://")[0]
        try:
            database_kind(value)
        except UnsupportedDatabaseUrlError as exc:
            raise ValueError(str(exc)) from None
        if scheme not in DATABASE_URL_SCHEMES:
            raise ValueError(
                f"unsupported database URL {scheme}://…: use sqlite:///path.db, "
                "postgresql://… or postgresql+psycopg://…"
            )
        return value

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
        """``SIGNOFF_WORKFLOWS`` as a list of ``module:attribute`` specs."""
        return split_specs(self.workflows)

    def slack_credentials_problem(self) -> str | None:
        """Why the Slack credentials given cannot serve Slack, if some are given but not
        enough (none at all means the local sandbox)."""
        token, secret, app = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
        )
        if token is None and secret is None and app is None:
            return None
        if token is None:
            given = "SLACK_SIGNING_SECRET" if secret is not None else "SLACK_APP_TOKEN"
            return f"{given} is set but SLACK_BOT_TOKEN is not: set both, or neither (sandbox)"
        if secret is None and app is None:
            return (
                "SLACK_BOT_TOKEN is set but SLACK_SIGNING_SECRET is not: set it to verify "
                "Slack's requests (or SLACK_APP_TOKEN for Socket Mode), or unset both for the "
                "sandbox"
            )
        return None

    @property
    def has_slack_credentials(self) -> bool:
        """Whether to talk to real Slack (a bot token and a signing secret or app token) rather than
        start the sandbox."""
        return self.slack_bot_token is not None and (
            self.slack_signing_secret is not None or self.slack_app_token is not None
        )


def split_specs(value: str) -> list[str]:
    """A comma-separated setting as its non-empty items."""
    return [s.strip() for s in value.split(",") if s.strip()]


class SettingsError(Exception):
    """A bad setting: the message is one line naming the variable and what is wrong."""


def load_settings(**overrides: object) -> Settings:
    """The settings from the environment (``overrides`` win); a bad one is a ``SettingsError`` of
    one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        alias = Settings.model_fields[field].alias if field in Settings.model_fields else field
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"bad setting {alias or field}: {message}") from None


def open_database(settings: Settings) -> BaseDb:
    """The database of ``SIGNOFF_DATABASE_URL`` (not connected yet)."""
    from engine.db import db_from_url

    url = settings.database_url
    if database_kind(url) == "postgresql" and "connect_timeout=" not in url:
        return db_from_url(url, connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS})
    return db_from_url(url)


def database_problem(exc: BaseException, database_url: str) -> str | None:
    """One line for a failure to reach or use the database, naming its URL (password
    masked); None if ``exc`` is not a database error."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if not isinstance(exc, DBAPIError):
        return None
    reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    detail = reason[0] if reason else type(exc).__name__
    where = f"{mask_url(database_url)} (SIGNOFF_DATABASE_URL)"
    if isinstance(exc, OperationalError | InterfaceError):
        return f"cannot reach the database {where}: {detail}"
    return f"database error in {where}: {detail}"
