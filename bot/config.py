"""Configuration from the environment and `.env` (pydantic-settings).

Names without a prefix (TELEGRAM_*, ZALO_*) are the ones operators and our checks use;
the project's own settings carry the VSSID_ prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from bot.crypto import Keyring

BACKEND_TOKEN_FILE = "backend.token"  # noqa: S105 - a file name; the token is made at run time


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(default=Path("vssid-data"), validation_alias="VSSID_DATA_DIR")
    # Any SQLAlchemy URL; empty means SQLite inside data_dir.
    database_url: str = Field(default="", validation_alias="VSSID_DATABASE_URL")
    # Empty: the stub backend runs in-process on data_dir; otherwise the HTTP backend's base URL.
    backend_url: str = Field(default="", validation_alias="VSSID_BACKEND_URL")
    backend_timeout_s: float = Field(default=5.0, validation_alias="VSSID_BACKEND_TIMEOUT")
    # Shared secret of the backend HTTP service: sent by the client, required by the server.
    # Empty: both use the token file in the data dir (`backend serve` creates it, loopback only).
    backend_token: str = Field(default="", validation_alias="VSSID_BACKEND_TOKEN")
    web_host: str = Field(default="127.0.0.1", validation_alias="VSSID_WEB_HOST")
    web_port: int = Field(default=8080, validation_alias="VSSID_WEB_PORT")
    # Public base URL of this service, for links in messages (web chat documents, webhooks).
    public_url: str = Field(default="", validation_alias="VSSID_PUBLIC_URL")
    log_level: str = Field(default="INFO", validation_alias="VSSID_LOG_LEVEL")
    # The data key (32 bytes, url-safe base64) sealing personal data at rest; empty: data.key
    # in the data dir, made on first start. Several workers on one database need the same key.
    data_key: str = Field(default="", validation_alias="VSSID_DATA_KEY")
    # Photos and PDFs of a declaration are purged this many days after its decision (0: kept).
    retention_days: int = Field(default=30, validation_alias="VSSID_RETENTION_DAYS")
    # Fair use per conversation: `burst` messages at once, then `per_minute` on average (0: off).
    rate_limit_burst: int = Field(default=60, validation_alias="VSSID_RATE_LIMIT_BURST")
    rate_limit_per_minute: float = Field(default=30.0, validation_alias="VSSID_RATE_LIMIT_PER_MINUTE")
    # Worker processes for photo checks and PDFs under `vssid-bot run`; 0: one per core, at most 4.
    cpu_workers: int = Field(default=0, ge=0, validation_alias="VSSID_CPU_WORKERS")
    # The hotline: when staff work (Asia/Ho_Chi_Minh), how long a ticket may wait before the
    # citizen is told nobody took it yet, how long a handoff link lives.
    office_hours: str = Field(
        default="Mon-Fri 07:30-11:30,13:00-16:30", validation_alias="VSSID_OFFICE_HOURS"
    )
    hotline_wait_minutes: float = Field(default=10.0, validation_alias="VSSID_HOTLINE_WAIT_MINUTES")
    handoff_ttl_hours: float = Field(default=24.0, validation_alias="VSSID_HANDOFF_TTL_HOURS")
    # Answered message ids are remembered this long (redeliveries answered once), then purged.
    seen_message_days: float = Field(default=7.0, gt=0, validation_alias="VSSID_SEEN_MESSAGE_DAYS")

    telegram_bot_token: str = Field(default="", validation_alias="TELEGRAM_BOT_TOKEN")
    telegram_framework: Literal["aiogram", "ptb"] = Field(
        default="aiogram", validation_alias="TELEGRAM_FRAMEWORK"
    )
    telegram_mode: Literal["polling", "webhook"] = Field(default="polling", validation_alias="TELEGRAM_MODE")
    telegram_webhook_secret: str = Field(default="", validation_alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_api_base: str = Field(default="", validation_alias="TELEGRAM_API_BASE")
    # The bot's @username, for school links (t.me/<username>); empty: asked of the Bot API.
    telegram_bot_username: str = Field(default="", validation_alias="TELEGRAM_BOT_USERNAME")

    zalo_app_id: str = Field(default="", validation_alias="ZALO_APP_ID")
    # The Official Account's id, for its page https://zalo.me/<id> (school links).
    zalo_oa_id: str = Field(default="", validation_alias="ZALO_OA_ID")
    zalo_oa_secret_key: str = Field(default="", validation_alias="ZALO_OA_SECRET_KEY")
    zalo_access_token: str = Field(default="", validation_alias="ZALO_ACCESS_TOKEN")
    zalo_refresh_token: str = Field(default="", validation_alias="ZALO_REFRESH_TOKEN")
    zalo_api_base: str = Field(
        default="https://openapi.zalo.me", validation_alias=AliasChoices("ZALO_API_BASE")
    )
    # Refreshing an expired OA token needs the app's own secret (not the OA secret key).
    zalo_app_secret_key: str = Field(default="", validation_alias="ZALO_APP_SECRET_KEY")
    # Hosts (and their sub-domains) image URLs in Zalo events may point at; comma-separated.
    zalo_media_hosts: str = Field(
        default="zdn.vn,zadn.vn,zalo.me,zaloapp.com", validation_alias="ZALO_MEDIA_HOSTS"
    )
    zalo_oauth_base: str = Field(default="https://oauth.zaloapp.com", validation_alias="ZALO_OAUTH_BASE")

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'vssid.sqlite3'}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    def keyring(self) -> Keyring:
        """The data keys (VSSID_DATA_KEY, else data.key in the data dir, made on first use)."""
        from bot.crypto import load_keyring

        return load_keyring(self.data_dir, self.data_key)

    @property
    def backend_token_file(self) -> Path:
        return self.data_dir / BACKEND_TOKEN_FILE

    def backend_token_value(self) -> str:
        """VSSID_BACKEND_TOKEN, else the token `backend serve` left in the data dir ("" if none)."""
        if self.backend_token:
            return self.backend_token
        try:
            return self.backend_token_file.read_text(encoding="utf-8").strip()
        except OSError:
            return ""

    @property
    def backend_store_url(self) -> str:
        """Where the in-process stub keeps its state (separate from the bot's own tables)."""
        return f"sqlite:///{self.data_dir / 'stub-backend.sqlite3'}"


def load_settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    """Settings from env/.env, with CLI options (e.g. --data-dir) taking precedence."""
    settings = Settings()
    updates = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        updates["data_dir"] = Path(data_dir).expanduser()
    return settings.model_copy(update=updates) if updates else settings
