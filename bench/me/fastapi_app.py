"""FastAPI peer for the `GET /api/v1/me` benchmark.

An idiomatic FastAPI + SQLAlchemy 2.x (ORM, sync session per request) equivalent of
kai's endpoint: the API key is looked up by the SHA-256 of the whole key string, joined
to its user, checked for revoked / expired / disabled, and `last_used_at` is written at
most once a minute. SQLite in WAL mode, with kai's table layout for `users` and
`api_keys` (UUID text ids, Unix-millisecond times, the raw 32-byte hash in a BLOB,
space-separated scopes).

Serve (the database path comes from the environment):

    KAI_BENCH_FASTAPI_DB=/tmp/x/app.db uvicorn fastapi_app:app --app-dir bench/me \
        --workers 1 --no-access-log --loop uvloop --http httptools

Create the schema, a user and an API key, print the key:

    KAI_BENCH_FASTAPI_DB=/tmp/x/app.db python bench/me/fastapi_app.py setup
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
import uuid
import time
from datetime import datetime, timezone
from typing import Annotated, Iterator

from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import BigInteger, Boolean, ForeignKey, LargeBinary, String, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DB_PATH = os.environ.get("KAI_BENCH_FASTAPI_DB", "fastapi_bench.db")
# The benchmark runs 64 concurrent connections. With SQLAlchemy's default pool (5 + 10
# overflow) a sync route deadlocks at that concurrency, so size the pool to it.
POOL_SIZE = int(os.environ.get("KAI_BENCH_POOL_SIZE", "64"))
LAST_USED_INTERVAL_MS = 60_000

engine = create_engine(
    f"sqlite:///{DB_PATH}",
    connect_args={"check_same_thread": False, "timeout": 5},
    pool_size=POOL_SIZE,
    max_overflow=0,
)


@event.listens_for(engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


SessionLocal = sessionmaker(bind=engine, expire_on_commit=False)


def now_ms() -> int:
    """Unix milliseconds, UTC: how kai stores times."""
    return time.time_ns() // 1_000_000


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=lambda: str(uuid.uuid4()))
    username: Mapped[str] = mapped_column(String, unique=True)
    password_hash: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String, default="user")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(BigInteger, default=0)
    locked_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    last_login_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String, primary_key=True, default=lambda: str(uuid.uuid4()))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String)
    prefix: Mapped[str] = mapped_column(String)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)  # SHA-256 of the whole key
    scopes: Mapped[str] = mapped_column(String)  # space-separated
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class AuthInfo(BaseModel):
    method: str
    id: str
    scopes: list[str]


class Me(BaseModel):
    id: str
    username: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    auth: AuthInfo


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc)


def get_db() -> Iterator[Session]:
    with SessionLocal() as db:
        yield db


bearer = HTTPBearer(auto_error=False)


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="invalid or missing credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )


def api_key_principal(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    db: Annotated[Session, Depends(get_db)],
) -> tuple[User, ApiKey]:
    if creds is None:
        raise _unauthorized()
    digest = hashlib.sha256(creds.credentials.encode()).digest()
    row = db.execute(
        select(ApiKey, User).join(User, ApiKey.user_id == User.id).where(ApiKey.key_hash == digest)
    ).one_or_none()
    if row is None:
        raise _unauthorized()
    key, user = row
    now = now_ms()
    if key.revoked_at is not None or user.disabled:
        raise _unauthorized()
    if key.expires_at is not None and key.expires_at <= now:
        raise _unauthorized()
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_INTERVAL_MS:
        key.last_used_at = now
        db.commit()
    return user, key


app = FastAPI(title="kai-bench FastAPI peer")


@app.get("/readyz")
def readyz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/v1/me", response_model=Me)
def me(principal: Annotated[tuple[User, ApiKey], Depends(api_key_principal)]) -> Me:
    user, key = principal
    return Me(
        id=user.id,
        username=user.username,
        role=user.role,
        disabled=user.disabled,
        created_at=from_ms(user.created_at),
        updated_at=from_ms(user.updated_at),
        last_login_at=from_ms(user.last_login_at),
        auth=AuthInfo(method="api_key", id=key.id, scopes=key.scopes.split()),
    )


def setup(username: str = "bench") -> str:
    """Create the schema, an admin user and a read-scoped key; return the key."""
    Base.metadata.create_all(engine)
    salt = secrets.token_bytes(16)
    pw_hash = hashlib.scrypt(secrets.token_bytes(16), salt=salt, n=2**14, r=8, p=1).hex()
    key = "kai_" + secrets.token_urlsafe(32)
    now = now_ms()
    with SessionLocal() as db:
        # kai's setup logs in to create its key, so its user has a last_login_at too.
        user = User(
            username=username,
            password_hash=f"scrypt${salt.hex()}${pw_hash}",
            role="admin",
            created_at=now,
            updated_at=now,
            last_login_at=now,
        )
        db.add(user)
        db.flush()
        db.add(
            ApiKey(
                user_id=user.id,
                name="bench",
                prefix=key[:12],
                key_hash=hashlib.sha256(key.encode()).digest(),
                scopes="read",
            )
        )
        db.commit()
    return key


if __name__ == "__main__":
    if sys.argv[1:] == ["setup"]:
        print(setup())
    else:
        sys.exit(f"usage: KAI_BENCH_FASTAPI_DB=PATH {sys.argv[0]} setup")
