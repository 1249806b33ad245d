"""Core memory: labelled blocks as Markdown files, read fresh from disk, written under a lock.

Two places hold blocks: the repo's `.agentmemory/blocks/` (committed, shared by the team) and the
user's `~/.config/mcode/blocks/` (follows the user to every repo). A project block shadows a user
block of the same label. Nothing is cached: the user may edit or delete a file while mcode runs, and
the next read must see it. Every write goes through `BlockStore.update`, which locks, re-reads,
checks the limit and the read-only flag, replaces the file atomically and records the change, so two
mcode processes (or an agent and its user) never lose each other's edits. A project block file that
is, or lies under, a symlink is never read or written (`mcode.fsio.confine`): it is listed broken.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from mcode.config import Paths, ensure_memory_dir
from mcode.fsio import (
    DEFAULT_LOCK_TIMEOUT,
    LockTimeoutError,
    UnsafePathError,
    atomic_write_text,
    check,
    file_lock,
    open_lock_file,
    read_bytes,
    release_lock,
    remove_file,
    try_lock,
)
from mcode.memory.defaults import DEFAULT_BLOCKS, template_text
from mcode.memory.frontmatter import (
    BlockContent,
    FrontMatterError,
    normalize_value,
    parse_block,
    parse_block_with_header,
    render_block,
    same_metadata,
)
from mcode.memory.history import History, HistoryEntry, new_entry

PROJECT = "project"
USER = "user"
LABEL_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
_LABEL_RULE = "labels use a-z, 0-9, '_' and '-', 1 to 64 characters"

# A change receives the block's current content (None: no such block) and returns the new content
# (None: delete the block). It may raise to refuse; it runs under the lock on freshly read content.
Change = Callable[[BlockContent | None], BlockContent | None]


class BlockStoreError(Exception):
    """Base of every error the block store reports; the message is fit to show a user or a model."""


class InvalidLabelError(BlockStoreError):
    pass


class BlockError(BlockStoreError):
    """A block file exists but cannot be used (corrupt front matter, not UTF-8…); names the file."""


class BlockNotFoundError(BlockStoreError):
    pass


class WriteRefusedError(BlockStoreError):
    """The write breaks a block's rules; the block is unchanged."""


class ReadOnlyError(WriteRefusedError):
    pass


class LimitExceededError(WriteRefusedError):
    pass


class ConflictError(BlockStoreError):
    """The block changed underneath an edit that was based on an older version."""


class HistoryEntryNotFoundError(BlockStoreError):
    pass


def check_label(label: str) -> str:
    if not LABEL_PATTERN.fullmatch(label):
        raise InvalidLabelError(f"invalid memory block label {label!r}: {_LABEL_RULE}")
    return label


@dataclass(frozen=True, slots=True)
class Scope:
    """One place blocks live, with its history and the lock that serialises its writers."""

    name: str
    blocks_dir: Path
    history_dir: Path
    lock_path: Path

    def block_path(self, label: str) -> Path:
        return self.blocks_dir / f"{label}.md"

    def has_file(self, label: str) -> bool:
        """Whether a file, even a dangling link, claims `label` here: it counts, broken or not."""
        return os.path.lexists(self.block_path(label))

    def editing_lock(self, label: str) -> Path:
        """Held while a person edits `label` by hand (`BlockStore.editing`)."""
        return self.lock_path.parent / f"{label}.editing.lock"

    @classmethod
    def under(cls, name: str, root: Path) -> Scope:
        # The lock sits beside blocks/ (not inside it) so `.agentmemory/*.lock` git-ignores it.
        return cls(name, root / "blocks", root / "history", root / "blocks.lock")


@dataclass(frozen=True, slots=True)
class Block:
    label: str
    scope: str
    path: Path
    content: BlockContent
    header: str | None = None  # the front matter as written, comments and all

    @property
    def value(self) -> str:
        return self.content.value

    @property
    def description(self) -> str:
        return self.content.description

    @property
    def limit(self) -> int:
        return self.content.limit

    @property
    def read_only(self) -> bool:
        return self.content.read_only

    @property
    def chars(self) -> int:
        return self.content.chars


def read_only_error(block: Block) -> ReadOnlyError:
    return ReadOnlyError(
        f"memory block {block.label!r} is read-only; nothing was changed "
        f"(to allow changes, set read_only: false in {block.path})"
    )


@dataclass(frozen=True, slots=True)
class BrokenBlock:
    """A block file that cannot be read; listed so the user sees it, never overwritten.

    Label `*` stands for every block of a scope whose directory cannot be used (a symlink)."""

    label: str
    scope: str
    path: Path
    error: str


def _read(scope: Scope, label: str) -> Block | None:
    path = scope.block_path(label)
    try:
        text = read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise BlockError(f"{path}: not UTF-8 text") from exc
    except UnsafePathError as exc:
        raise BlockError(str(exc)) from exc
    except OSError as exc:
        raise BlockError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        content, header = parse_block_with_header(text)
    except FrontMatterError as exc:
        raise BlockError(f"{path}: {exc}") from exc
    return Block(label, scope.name, path, content, header)


def _dir_problem(scope: Scope) -> str | None:
    """Why the scope's blocks directory must not be listed (a symlink on the way), or None."""
    try:
        check(scope.blocks_dir)
    except UnsafePathError as exc:
        return str(exc)
    return None


def _order(label: str) -> tuple[int, str]:
    defaults = list(DEFAULT_BLOCKS)
    return (defaults.index(label), "") if label in defaults else (len(defaults), label)


class BlockStore:
    """The blocks of one repository and one user."""

    def __init__(
        self, project: Scope, user: Scope, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> None:
        self.project = project
        self.user = user
        self.lock_timeout = lock_timeout

    @classmethod
    def for_paths(cls, paths: Paths) -> BlockStore:
        return cls(Scope.under(PROJECT, paths.memory), Scope.under(USER, paths.user_config))

    @property
    def scopes(self) -> tuple[Scope, Scope]:
        """In precedence order: the project's blocks shadow the user's."""
        return (self.project, self.user)

    def scope(self, name: str) -> Scope:
        for scope in self.scopes:
            if scope.name == name:
                return scope
        raise ValueError(f"unknown scope {name!r}: expected {PROJECT!r} or {USER!r}")

    # Reading --------------------------------------------------------------------------------------

    def find(self, label: str) -> Block | None:
        """The block in force for `label`, or None; BlockError when its file is unusable."""
        check_label(label)
        for scope in self.scopes:
            block = _read(scope, label)
            if block is not None:
                return block
        return None

    def get(self, label: str) -> Block:
        block = self.find(label)
        if block is None:
            raise self.not_found(label)
        return block

    def labels(self) -> list[str]:
        """Every label with a file in either scope, in display order (the defaults first)."""
        names = {
            p.stem
            for s in self.scopes
            if _dir_problem(s) is None and s.blocks_dir.is_dir()
            for p in s.blocks_dir.glob("*.md")
            if not p.name.startswith(".")  # editors' and our own temp files
        }
        return sorted(names, key=_order)

    def entries(self) -> list[Block | BrokenBlock]:
        """Every block in force, broken ones included, so one bad file never hides the others."""
        out: list[Block | BrokenBlock] = [
            BrokenBlock("*", s.name, s.blocks_dir, problem)
            for s in self.scopes
            if (problem := _dir_problem(s)) is not None
        ]
        for label in self.labels():
            scope = next((s for s in self.scopes if s.has_file(label)), None)
            if scope is None:  # deleted since it was listed
                continue
            path = scope.block_path(label)
            if not LABEL_PATTERN.fullmatch(label):
                problem = f"{path}: bad file name; {_LABEL_RULE}"
                out.append(BrokenBlock(label, scope.name, path, problem))
                continue
            try:
                block = _read(scope, label)
            except BlockError as exc:
                out.append(BrokenBlock(label, scope.name, path, str(exc)))
                continue
            if block is not None:  # None: deleted between listing and reading
                out.append(block)
        return out

    def blocks(self) -> list[Block]:
        """The readable blocks in force, in display order: what goes into the prompt."""
        return [e for e in self.entries() if isinstance(e, Block)]

    def not_found(self, label: str) -> BlockNotFoundError:
        """The error for a missing block, naming the ones that exist so the caller can pick one."""
        known = [name for name in self.labels() if LABEL_PATTERN.fullmatch(name)]
        hint = f"; existing blocks: {', '.join(known)}" if known else ""
        return BlockNotFoundError(f"no memory block {label!r}{hint}")

    # A person's edit in progress ---------------------------------------------------------------------

    @contextlib.contextmanager
    def editing(self, label: str, scope: str = PROJECT) -> Iterator[None]:
        """Say, for as long as the block runs, that a person is editing `label` by hand (in an
        editor: their edit is not saved yet), so that background writers leave it alone. An flock:
        it ends with the editor's process, however that ends. A second editor is not refused
        (the first to save wins; the other gets a ConflictError)."""
        path = self.scope(scope).editing_lock(check_label(label))
        try:
            fd = open_lock_file(path)
        except OSError as exc:
            raise BlockStoreError(f"cannot lock {path}: {exc.strerror or exc}") from exc
        held = try_lock(fd)
        try:
            yield
        finally:
            if held:
                release_lock(fd)
            else:
                os.close(fd)

    def being_edited(self, label: str) -> bool:
        """Whether a person is editing `label` by hand right now (in either scope)."""
        for scope in self.scopes:
            path = scope.editing_lock(check_label(label))
            if not path.exists():
                continue
            fd = open_lock_file(path)
            if not try_lock(fd):
                os.close(fd)
                return True
            release_lock(fd)
        return False

    # Writing --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, scope: Scope) -> Iterator[None]:
        """Writers of one scope take turns. One lock per scope, never two at once: writing a user
        block works even when the repo's `.agentmemory/` is unusable, and no deadlock can arise."""
        with contextlib.ExitStack() as stack:
            try:
                if scope.name == PROJECT:
                    ensure_memory_dir(scope.lock_path.parent)
                stack.enter_context(file_lock(scope.lock_path, self.lock_timeout))
            except LockTimeoutError as exc:
                raise BlockStoreError(str(exc)) from exc
            except OSError as exc:
                problem = exc.strerror or exc
                raise BlockStoreError(f"cannot lock {scope.lock_path}: {problem}") from exc
            yield

    def _target(self, label: str, scope: str | None) -> Scope:
        """The scope whose file a write works on: the one asked for, else the block in force,
        else the project for a new block. A broken file counts, so it is refused, not shadowed."""
        if scope is not None:
            return self.scope(scope)
        for candidate in self.scopes:
            if candidate.has_file(label):
                return candidate
        return self.project

    def update(
        self,
        label: str,
        change: Change,
        *,
        actor: str,
        reason: str,
        op: str,
        scope: str | None = None,
        header: str | None = None,
    ) -> HistoryEntry | None:
        """Apply `change` under the lock; the history entry, or None if nothing changed.

        `scope` names the file to work on; by default the block in force, and a new block goes to
        the project. `header` is front matter to write verbatim (a user's edit, comments and all);
        without it, the file's own front matter is kept while the metadata is unchanged. Refusals
        (read-only, over the limit, a broken file, or `change` raising) leave the file as it was.
        """
        check_label(label)
        target = self._target(label, scope)
        with self._locked(target):
            current = _read(target, label)  # re-read under the lock: the truth, not a stale copy
            if current is not None and current.read_only:
                raise read_only_error(current)
            old = current.content if current is not None else None
            new = change(old)
            if new is not None:
                new = replace(new, value=normalize_value(new.value))
            if new == old:
                return None
            if new is not None and new.chars > new.limit:
                raise LimitExceededError(
                    f"memory block {label!r} would be {new.chars} chars, limit is {new.limit}; "
                    "nothing was changed"
                )
            entry = new_entry(
                label, target.name, actor=actor, reason=reason, op=op, old=old, new=new
            )
            path = target.block_path(label)
            history = History(target.history_dir, target.name)
            try:
                check(history.path(label))  # a refused history refuses the change, not half of it
                if new is None:
                    remove_file(path)
                else:
                    if header is None and current is not None:
                        same = same_metadata(current.content, new)
                        header = current.header if same else None
                    atomic_write_text(path, render_block(new, header))
                history.append(entry)
            except UnsafePathError as exc:
                raise BlockStoreError(f"cannot change memory block {label!r}: {exc}") from exc
            except OSError as exc:
                raise BlockStoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
            return entry

    def set_value(
        self,
        label: str,
        value: str,
        *,
        actor: str,
        reason: str,
        scope: str | None = None,
        description: str | None = None,
        limit: int | None = None,
        op: str = "set",
    ) -> HistoryEntry | None:
        """Replace the block's text (creating the block if needed), optionally its metadata too."""

        def change(current: BlockContent | None) -> BlockContent:
            base = current if current is not None else BlockContent(value="")
            return replace(
                base,
                value=value,
                description=base.description if description is None else description,
                limit=base.limit if limit is None else limit,
            )

        return self.update(label, change, actor=actor, reason=reason, op=op, scope=scope)

    def append(
        self, label: str, text: str, *, actor: str, reason: str, scope: str | None = None
    ) -> HistoryEntry | None:
        """Add `text` as new lines at the end of the block (creating the block if needed)."""
        addition = normalize_value(text)

        def change(current: BlockContent | None) -> BlockContent:
            if current is None:
                return BlockContent(value=addition)
            joined = f"{current.value}\n{addition}" if current.value else addition
            return replace(current, value=joined)

        return self.update(label, change, actor=actor, reason=reason, op="append", scope=scope)

    def delete(self, label: str, *, actor: str, reason: str) -> HistoryEntry:
        def change(current: BlockContent | None) -> None:
            if current is None:
                raise self.not_found(label)
            return None

        entry = self.update(label, change, actor=actor, reason=reason, op="delete")
        assert entry is not None  # deleting an existing block always changes something
        return entry

    def ensure_defaults(self) -> list[str]:
        """Create the default blocks that have never existed; the labels created.

        A default the user deleted stays deleted: its history shows it existed. Best effort, so that
        listing blocks in a read-only checkout still works.
        """
        created = []
        for label, scope_name in DEFAULT_BLOCKS.items():
            scope = self.scope(scope_name)
            if scope.has_file(label) or History(scope.history_dir, scope_name).has_any(label):
                continue
            text = template_text(label)
            if text is None:
                continue
            content = parse_block(text)
            try:
                entry = self.update(
                    label,
                    lambda current, content=content: current if current is not None else content,
                    actor="init",
                    reason="default block",
                    op="create",
                    scope=scope_name,
                )
            except (BlockStoreError, OSError):
                continue
            if entry is not None:
                created.append(label)
        return created

    # History --------------------------------------------------------------------------------------

    def log(self, label: str) -> list[HistoryEntry]:
        """Every recorded change to `label` in either scope, oldest first."""
        check_label(label)
        try:
            entries = [e for s in self.scopes for e in History(s.history_dir, s.name).read(label)]
        except OSError as exc:
            raise BlockStoreError(f"cannot read the history of {label!r}: {exc}") from exc
        return sorted(entries, key=lambda e: e.time)

    def find_entry(self, label: str, entry_id: str) -> HistoryEntry:
        """The entry whose id is or starts with `entry_id` (like a short git hash)."""
        wanted = entry_id.strip().lower()
        matches = [e for e in self.log(label) if wanted and e.id.startswith(wanted)]
        if not matches:
            raise HistoryEntryNotFoundError(f"no change {entry_id!r} in the history of {label!r}")
        if len(matches) > 1:
            ids = ", ".join(e.id for e in matches)
            raise HistoryEntryNotFoundError(f"change id {entry_id!r} is ambiguous: {ids}")
        return matches[0]

    def revert(
        self, label: str, entry_id: str, *, actor: str, reason: str = "", force: bool = False
    ) -> HistoryEntry | None:
        """Put the block back as it was before change `entry_id` (deleting it if that created it).

        Refused when the block has changed since that entry, unless `force`: reverting then would
        silently drop the later changes (they stay in the history either way).
        """
        entry = self.find_entry(label, entry_id)

        def change(current: BlockContent | None) -> BlockContent | None:
            if not force and current != entry.new:
                raise ConflictError(
                    f"memory block {label!r} has changed since change {entry.id}; "
                    "revert with --force to restore it anyway"
                )
            return entry.old

        why = f"revert {entry.id}" + (f": {reason}" if reason else "")
        return self.update(label, change, actor=actor, reason=why, op="revert", scope=entry.scope)
