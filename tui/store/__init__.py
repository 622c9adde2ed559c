"""The chat store: every chat autosaved to SQLite, reopened, exported and imported. No Textual here."""

from tui.store.errors import (
    ImportFormatError,
    NotFoundError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreVersionError,
)
from tui.store.fingerprint import fingerprint_model
from tui.store.opening import OpenedStore, default_db_path, move_aside, open_store
from tui.store.records import (
    ChatSummary,
    FingerprintKind,
    MessageStatus,
    ModelRef,
    Role,
    StoredChat,
    StoredComparison,
    StoredComparisonColumn,
    StoredMessage,
    StoredReply,
    StoredSibling,
)
from tui.store.store import ChatStore
from tui.store.token_events import EventRetention

__all__ = [
    "ChatStore",
    "ChatSummary",
    "EventRetention",
    "FingerprintKind",
    "ImportFormatError",
    "MessageStatus",
    "ModelRef",
    "NotFoundError",
    "OpenedStore",
    "Role",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
    "StoredChat",
    "StoredComparison",
    "StoredComparisonColumn",
    "StoredMessage",
    "StoredReply",
    "StoredSibling",
    "default_db_path",
    "fingerprint_model",
    "move_aside",
    "open_store",
]
