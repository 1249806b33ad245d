"""The repo map: a ranked outline of the repository's files and key definitions in a token budget.

The approach is Aider's (`aider/repomap.py`): files are nodes, each identifier a file references and
another defines is an edge referencer -> definer, a personalised PageRank ranks the files, and each
file's rank flows along its out-edges onto the definitions it points at. A binary search finds how
many of the top definitions fit the budget, and the outline is rendered grouped by file.

Nothing is parsed here: the store hands over each file's definitions and distinct references
(`RepoGraph.from_store`). It does so column by column, the references as the JSON text they are
stored as, which numpy resolves to identifiers (`_NameTable`); a definition's symbol, kind and
signature are read only for the few the map shows. The file-to-file edge list is never built:
walking file -> identifier -> every definer is the same walk but costs O(references + definitions)
per iteration instead of O(references x definers). This is what keeps a 3,000-file repository well
under a second.

Unlike Aider, a file's use of its own names makes no edge: it says nothing of the file's weight to
others, and a self-loop turns a self-contained module into a rank sink. Hence no 0.1 self-edge for
names nobody references either: they get no rank and come after the used ones, by their file's rank.

Files in play (`focus_files`) and files the query names (a path, a directory, a defined name) get
most of the restart mass, so they and what they use rank high; identifiers the query mentions weigh
x10. A focus file's neighbours (the files it uses and the files that use it, by the names between
them) share some of it too, since rank only flows from a user to what it uses. Focus files' own
definitions are listed only after every other file's definitions and the definition-less paths
have fitted, and their entries come last: the agent already has them open (Aider leaves them out
of the map altogether). Their paths, and their strongest neighbours', are taken first, before
any definition.

As in Aider's map, a method is shown inside its class's outline: the line of its class (and of the
class around that) comes with it, counted in the budget once per class, so ten `def value(self):`
read as the methods of ten classes.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, count, repeat
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from mcode.index.model import Definition
from mcode.index.terms import split_identifier

if TYPE_CHECKING:
    from mcode.store.manifest import SymbolColumns

_DAMPING = 0.85
_TOLERANCE = 1.0e-6  # per file, on the L1 change between iterations, as networkx's pagerank
_MAX_ITERATIONS = 100
_MATCHED_SHARE = 0.9  # of the restart mass, for focus and query-matched files when there are any
_UBIQUITOUS_DEFINERS = 5
_NEIGHBOUR_SHARE = 0.5  # restart mass of a focus file's neighbours, all told, per focus file
_KEPT_NEIGHBOURS = 3  # the focus files' strongest neighbours are always listed, if only by path
_PARENT_SCAN = 2_000  # definitions looked back over for a method's class

_CHARS_PER_TOKEN = 4
_LINE_NUMBER_WIDTH = 4
_MIN_DEFINITION_CHARS = _LINE_NUMBER_WIDTH + 4  # "│ ", one character of signature, the newline
_INDENT = "    "
_MAX_SIGNATURE_CHARS = 100
_INDEX = np.int64

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATH_TOKEN = re.compile(r"[\w.-]*[/.][\w./-]*\w")
# What joining a multi-line declaration leaves inside brackets: "( a", "a )", "b, )".
_BRACKET_PADDING = re.compile(r",?\s(?=[)\]}])|(?<=[(\[{])\s")
_STOPWORDS = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "did", "do"),
        *("does", "for", "from", "has", "have", "how", "if", "in", "into", "is", "it", "its"),
        *("not", "of", "on", "or", "our", "should", "so", "that", "the", "their", "then", "there"),
        *("these", "this", "those", "to", "was", "we", "were", "what", "when", "where", "which"),
        *("who", "why", "will", "with", "would", "you", "your"),
    }
)


@dataclass(frozen=True, slots=True)
class FileSymbols:
    """What the store knows about one file: its definitions and the distinct identifiers it uses."""

    path: str
    definitions: Sequence[Definition]
    references: Sequence[str]


@dataclass(frozen=True, slots=True)
class MapEntry:
    """One file of the map and the definitions shown for it."""

    path: str
    score: float  # the file's PageRank
    definitions: tuple[Definition, ...]  # the ones shown, in line order


@dataclass(frozen=True, slots=True)
class RepoMap:
    entries: tuple[MapEntry, ...]  # files in rank order, focus files last
    text: str  # the rendered outline
    tokens: int  # estimated tokens of text


def estimate_tokens(text: str) -> int:
    """About four characters a token: good enough for a budget and free of tokenizer downloads."""
    return -(-len(text) // _CHARS_PER_TOKEN)


def build_repo_map(
    files: Sequence[FileSymbols],
    max_tokens: int = 1024,
    *,
    focus_files: Collection[str] = (),
    query: str = "",
) -> RepoMap:
    """Rank `files` over their definition/reference graph and render what fits in `max_tokens`."""
    return RepoGraph(files).map(max_tokens, focus_files=focus_files, query=query)


class RepoGraph:
    """The definition/reference graph of a repository, ready to map for any focus, query or budget.

    Building it is most of the cost (every reference is looked up once), so a caller that maps the
    same index state again, such as the REPL on every turn, can keep one and call `map`: a map of
    an index that changed since leaves out the definitions it no longer has.
    """

    def __init__(self, files: Sequence[FileSymbols]) -> None:
        self._setup(_Graph.build(_from_files(_unique_by_path(files))))

    @classmethod
    def from_store(cls, store: SymbolStore) -> RepoGraph:
        """The graph of what the index holds, read as columns, never as a row per definition.

        The graph reads the definitions it shows from `store` when a map first shows them, so the
        store must stay open while the graph is in use.
        """
        graph = cls.__new__(cls)
        graph._setup(_Graph.build(_from_store(store)))
        return graph

    def _setup(self, graph: _Graph) -> None:
        self._graph = graph
        self._weights = _static_weights(graph)
        self._components: list[set[str]] | None = None
        self._lower_names: list[str] | None = None

    def map(
        self, max_tokens: int = 1024, *, focus_files: Collection[str] = (), query: str = ""
    ) -> RepoMap:
        graph = self._graph
        if not graph.paths or max_tokens <= 0:
            return RepoMap(entries=(), text="", tokens=0)
        terms = query_terms(query)
        focus = _focus_mask(graph.paths, focus_files)
        mentioned = self._mentioned(terms)
        file_mass = focus.astype(float)
        pair_mass = np.zeros(len(graph.pair_file))
        if terms:
            file_mass += _path_matches(graph.paths, self._path_components(), terms)
            pair_mass += _definition_matches(graph, mentioned)
        near = _neighbours(graph, self._weights, focus)
        if near.any():
            file_mass += _NEIGHBOUR_SHARE * focus.sum() * near / near.sum()
        teleport = _Teleport.build(graph, file_mass, pair_mass)
        ranks = _pagerank(graph, np.where(mentioned, 10.0, 1.0) * self._weights, teleport)
        kept = np.concatenate((np.flatnonzero(focus), _strongest(near, graph.paths)))
        return _Layout(graph, ranks, focus, kept).fit(max_tokens)

    def _mentioned(self, terms: frozenset[str]) -> np.ndarray:
        """Identifiers the query names, compared without case."""
        count = len(self._graph.names)
        if not terms:
            return np.zeros(count, dtype=bool)
        if self._lower_names is None:
            self._lower_names = [name.lower() for name in self._graph.names]
        return np.fromiter(map(terms.__contains__, self._lower_names), dtype=bool, count=count)

    def _path_components(self) -> list[set[str]]:
        if self._components is None:
            self._components = [_path_components(path.lower()) for path in self._graph.paths]
        return self._components


def query_terms(query: str) -> frozenset[str]:
    """Lower-cased words of `query`, their snake/Camel parts, and path-like tokens kept whole."""
    terms: set[str] = set()
    for word in _WORD.findall(query):
        terms.add(word.lower())
        terms.update(split_identifier(word))
    terms.update(token.lower().strip("./") for token in _PATH_TOKEN.findall(query))
    return frozenset(t for t in terms if len(t) > 1 and not t.isdigit() and t not in _STOPWORDS)


def _unique_by_path(files: Sequence[FileSymbols]) -> list[FileSymbols]:
    """A path given twice keeps its first entry, so one file is one node."""
    seen: dict[str, FileSymbols] = {}
    for file in files:
        seen.setdefault(file.path, file)
    return list(seen.values())


# (path, name, symbol, kind, line, signature): one stored definition, as `Manifest.definitions_at`.
_Row = tuple[str, str, str, str, int, str]
_Key = tuple[str, str, int]  # (path, name, line): what the graph knows of a definition


class SymbolStore(Protocol):
    """Where `RepoGraph.from_store` reads the index: `mcode.store.Manifest`."""

    def symbol_columns(self) -> SymbolColumns: ...

    def definitions_at(self, keys: Iterable[_Key]) -> Iterable[_Row]: ...


@dataclass(frozen=True, slots=True)
class _Symbols:
    """What the graph is built from. Definitions come file by file in line order, as their file,
    line and name: the rest of a definition is read only for the few the map shows."""

    paths: list[str]
    references: Sequence[str | Sequence[str]]  # per file: the names it uses, or their JSON text
    def_file: np.ndarray
    def_line: np.ndarray
    def_names: Sequence[str]
    load: Callable[[list[_Key]], Iterable[_Row]]  # the definitions with these keys


def _from_files(files: Sequence[FileSymbols]) -> _Symbols:
    definitions = [d for file in files for d in file.definitions]
    per_file = [len(file.definitions) for file in files]
    rows: dict[_Key, list[_Row]] = defaultdict(list)
    for file in files:
        for d in file.definitions:
            row = (file.path, d.name, d.symbol, d.kind, d.line, d.signature)
            rows[file.path, d.name, d.line].append(row)

    def load(keys: list[_Key]) -> Iterator[_Row]:
        return chain.from_iterable(rows[key] for key in keys)

    return _Symbols(
        paths=[file.path for file in files],
        references=[file.references for file in files],
        def_file=np.repeat(np.arange(len(files), dtype=_INDEX), per_file),
        def_line=_as_index((d.line for d in definitions), len(definitions)),
        def_names=[d.name for d in definitions],
        load=load,
    )


def _from_store(store: SymbolStore) -> _Symbols:
    """The store's columns, definitions put file by file in line order as `_from_files` has them.

    Definitions of a file the manifest no longer lists as indexed are dropped.
    """
    columns = store.symbol_columns()
    paths = list(columns.paths)
    index = {path: i for i, path in enumerate(paths)}
    defining = _as_index(map(index.get, columns.defining, repeat(-1)), len(columns.defining))
    file = np.repeat(defining, columns.counts)
    line = np.array(columns.lines, dtype=_INDEX)
    order = np.lexsort((line, file))  # stable: ties keep the store's order
    order = order[file[order] >= 0]
    return _Symbols(
        paths=paths,
        references=columns.references,
        def_file=file[order],
        def_line=line[order],
        def_names=list(map(columns.names.__getitem__, order.tolist())),
        load=store.definitions_at,
    )


class _Details:
    """The `Definition` behind a definition's index, read from the store when first asked for.

    A definition the store no longer has (the index changed since the graph was built) is None,
    and the map leaves it out. Definitions of one file, line and name take the store's rows with
    that key in order, as the graph took them.
    """

    def __init__(self, symbols: _Symbols) -> None:
        self._symbols = symbols
        self._definitions: dict[int, Definition | None] = {}

    def __getitem__(self, d: int) -> Definition | None:
        return self._definitions[d]

    def read(self, definitions: Iterable[int]) -> None:
        """Load those of `definitions` not loaded yet, in one call to the store."""
        symbols = self._symbols
        keys: dict[_Key, list[int]] = {}
        for d in definitions:
            if d in self._definitions:
                continue
            path = symbols.paths[symbols.def_file[d]]
            key = (path, symbols.def_names[d], int(symbols.def_line[d]))
            if key not in keys:
                keys[key] = self._same_key(d)
        if not keys:
            return
        stored: dict[_Key, list[_Row]] = defaultdict(list)
        for row in symbols.load(list(keys)):
            stored[row[0], row[1], row[4]].append(row)
        for key, same in keys.items():
            rows = stored.get(key, [])
            for k, d in enumerate(same):
                self._definitions[d] = Definition(*rows[k][1:]) if k < len(rows) else None

    def _same_key(self, d: int) -> list[int]:
        """The definitions of d's file, line and name: neighbours, as the graph is sorted so."""
        file, line = self._symbols.def_file, self._symbols.def_line
        first, last = d, d
        while first > 0 and file[first - 1] == file[d] and line[first - 1] == line[d]:
            first -= 1
        while last + 1 < len(file) and file[last + 1] == file[d] and line[last + 1] == line[d]:
            last += 1
        names = self._symbols.def_names
        return [k for k in range(first, last + 1) if names[k] == names[d]]


@dataclass(frozen=True, slots=True)
class _Graph:
    """The graph as flat arrays; an identifier's id is the index of its first definition."""

    paths: list[str]
    names: Sequence[str]  # identifier id -> name (per definition: ids are first definitions)
    details: _Details  # the `Definition` behind each definition's index
    def_file: np.ndarray  # per definition, file by file in line order
    def_line: np.ndarray
    def_pair: np.ndarray  # per definition: its (file, identifier) pair
    pair_file: np.ndarray  # per distinct (file, identifier it defines)
    pair_ident: np.ndarray
    pair_own_use: np.ndarray  # per pair: the file references it too, and so does another definer
    ref_file: np.ndarray  # per (file, identifier it references that another file defines)
    ref_ident: np.ndarray
    ref_others: np.ndarray  # per reference: how many files other than the referencer define it
    definers: np.ndarray  # per identifier: how many files define it

    @classmethod
    def build(cls, symbols: _Symbols) -> _Graph:
        # An identifier is numbered by its first definition: one pass in C, and the order of first
        # definition all the same. Numbers no identifier takes cost a slot in the arrays, no more.
        names = symbols.def_names
        vocab: dict[str, int] = {}
        def_ident = _as_index(map(vocab.setdefault, names, count()), len(names))
        width = max(len(names), 1)  # (file, identifier) pairs are keyed file * width + identifier
        def_file = symbols.def_file
        def_keys = def_file * width + def_ident
        pair_keys = _distinct(def_keys)
        pair_file, pair_ident = np.divmod(pair_keys, width)
        definers = np.bincount(pair_ident, minlength=len(names))
        ref_file, ref_ident = _resolve(symbols.references, vocab)
        # Names no file defines (builtins, locals) make no edge. References are distinct per file as
        # the indexer keeps them; a repeat would only weigh twice, not worth a sort to drop.
        defined = ref_ident >= 0
        ref_file, ref_ident = ref_file[defined], ref_ident[defined]
        own = _own_use(pair_keys, width, definers, ref_file, ref_ident)
        ref_others = definers[ref_ident] - own
        edged = ref_others > 0  # a file using its own name makes no edge (no self-loops)
        shared = own & edged  # the file's own use, to take back out of what its definitions get
        pair_own_use = np.zeros(len(pair_keys), dtype=bool)
        own_keys = ref_file[shared] * width + ref_ident[shared]
        pair_own_use[np.searchsorted(pair_keys, own_keys)] = True
        return cls(
            paths=symbols.paths,
            names=names,
            details=_Details(symbols),
            def_file=def_file,
            def_line=symbols.def_line,
            def_pair=np.searchsorted(pair_keys, def_keys),
            pair_file=pair_file,
            pair_ident=pair_ident,
            pair_own_use=pair_own_use,
            ref_file=ref_file[edged],
            ref_ident=ref_ident[edged],
            ref_others=ref_others[edged],
            definers=definers,
        )


def _as_index(values: Iterable[int], count: int) -> np.ndarray:
    return np.fromiter(values, dtype=_INDEX, count=count)


def _resolve(
    references: Sequence[str | Sequence[str]], vocab: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per reference, its file and the identifier id it names (-1 for a name nothing defines).

    JSON texts that hold only ASCII and no escape, as the index writes them, are read in numpy by
    `_NameTable`; other texts are decoded, and lists of names are looked up in `vocab`, one by one.
    """
    n = len(references)
    plain = [
        i
        for i, refs in enumerate(references)
        if isinstance(refs, str) and refs.isascii() and "\\" not in refs
    ]
    counts = np.zeros(n, dtype=_INDEX)
    found: list[tuple[list[int], np.ndarray, np.ndarray]] = []  # (files, their counts, their ids)
    quoted = _NameTable(vocab).find_quoted([references[i] for i in plain]) if plain else None
    if quoted is None:
        plain = []
    else:
        found.append((plain, *quoted))
    if len(plain) < n:
        rest = sorted(set(range(n)).difference(plain))
        lists = [_names(references[i]) for i in rest]
        rest_counts = np.array([len(names) for names in lists], dtype=_INDEX)
        resolved = map(vocab.get, chain.from_iterable(lists), repeat(-1))
        found.append((rest, rest_counts, _as_index(resolved, int(rest_counts.sum()))))
    for files, file_counts, _ in found:
        counts[files] = file_counts
    ref_file = np.repeat(np.arange(n, dtype=_INDEX), counts)
    if len(found) == 1:
        return ref_file, found[0][2]
    ref_ident = np.empty(len(ref_file), dtype=_INDEX)
    offsets = np.cumsum(counts) - counts  # where each file's references start
    for files, file_counts, ids in found:
        shift = offsets[files] - (np.cumsum(file_counts) - file_counts)
        ref_ident[np.repeat(shift, file_counts) + np.arange(len(ids))] = ids
    return ref_file, ref_ident


def _names(references: str | Sequence[str]) -> Sequence[str]:
    return json.loads(references) if isinstance(references, str) else references


_WORD_BYTES = 8
_KEY_BYTES = 2 * _WORD_BYTES  # names this long or shorter are found in numpy, longer by the dict
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(_WORD_BYTES)] + [2**64 - 1], np.uint64)
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(32))


class _NameTable:
    """Identifier ids of the names quoted in JSON texts, found in numpy.

    In a large repository a file uses hundreds of names and the repository hundreds of thousands:
    decoding each and looking it up in a dict costs more than all the rest of the map. Here a name
    of up to 16 bytes is its bytes as two 64-bit words, zero past its end; a hash of the words
    picks a bucket of a table sorted by bucket, and the words are compared, so a match is exact
    whatever the hash does. Longer names, a few percent, go through the dict.
    """

    def __init__(self, vocab: dict[str, int]) -> None:
        self._vocab = vocab
        names = [name for name in vocab if "\0" not in name]  # JSON escapes NUL: never quoted bare
        data = "\0".join(names).encode()
        buffer, view = _word_view(data)
        ends = np.append(np.flatnonzero(buffer[: len(data)] == 0), len(data))[: len(names)]
        starts = np.concatenate(([0], ends[:-1] + 1)).astype(_INDEX)[: len(names)]
        lengths = ends - starts
        short = np.flatnonzero(lengths <= _KEY_BYTES)
        words = _words(view, starts[short], lengths[short])
        self._bits = max(len(short), 1).bit_length() + 2  # buckets: 4 to 8 per name, most empty
        bucket = self._bucket(words)
        order = np.argsort(bucket, kind="stable")
        self._first = np.searchsorted(bucket[order], np.arange((1 << self._bits) + 1))
        self._low, self._high = words[0][order], words[1][order]
        ids = _as_index(map(vocab.__getitem__, names), len(names))
        self._ids = ids[short][order]

    def _bucket(self, words: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        low, high = words
        mixed = low * _MIX[0] ^ high * _MIX[1]
        mixed ^= mixed >> _MIX[2]
        return ((mixed * _MIX[0]) >> np.uint64(64 - self._bits)).astype(_INDEX)

    def find_quoted(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """Per text, how many names it quotes; per name quoted, its identifier id or -1.

        Each text is an ASCII JSON array of strings with no escape: its strings are what lies
        between the first and second quote, the third and fourth, and so on. None if a text has an
        odd number of quotes, so is no such array.
        """
        data = "".join(texts).encode("ascii")
        buffer, view = _word_view(data)
        quotes = np.flatnonzero(buffer[: len(data)] == ord('"'))
        ends = np.cumsum(np.fromiter(map(len, texts), dtype=_INDEX, count=len(texts)))
        per_text = np.diff(np.searchsorted(quotes, ends), prepend=0)
        if (per_text % 2).any():
            return None
        starts = quotes[0::2] + 1
        lengths = quotes[1::2] - starts
        ids = np.full(len(starts), -1, dtype=_INDEX)
        short = np.flatnonzero(lengths <= _KEY_BYTES)
        ids[short] = self._find(_words(view, starts[short], lengths[short]))
        long = np.flatnonzero(lengths > _KEY_BYTES)
        names = _strings(buffer, starts[long], lengths[long])
        ids[long] = _as_index(map(self._vocab.get, names, repeat(-1)), len(long))
        return per_text // 2, ids

    def _find(self, words: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Walk every name's bucket in step, dropping the names found or at their bucket's end.

        Equal words are equal names: neither a name here nor a name quoted without escapes holds
        NUL, so the zeros past a name's end tell its length.
        """
        low, high = words
        bucket = self._bucket(words)
        at, end = self._first[bucket], self._first[bucket + 1]
        ids = np.full(len(low), -1, dtype=_INDEX)
        pending = np.flatnonzero(at < end)
        while len(pending):
            here = at[pending]
            same = (self._low[here] == low[pending]) & (self._high[here] == high[pending])
            ids[pending[same]] = self._ids[here[same]]
            at[pending] = here + 1
            pending = pending[~same & (here + 1 < end[pending])]
        return ids


def _strings(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> list[str]:
    """The ASCII strings at `starts`, gathered into one text to decode and split once."""
    if not len(starts):
        return []
    sizes = lengths + 1  # each with a NUL after it
    ends = np.cumsum(sizes)
    picked = np.repeat(starts - (ends - sizes), sizes) + np.arange(int(ends[-1]))
    gathered = buffer[picked]
    gathered[ends - 1] = 0
    return gathered[:-1].tobytes().decode("ascii").split("\0")


def _word_view(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The bytes, zero-padded, and the 64-bit little-endian word starting at each of them."""
    buffer = np.zeros(len(data) + _KEY_BYTES, dtype=np.uint8)
    buffer[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    view = np.ndarray((len(data) + _WORD_BYTES + 1,), "<u8", buffer, strides=(1,))
    return buffer, view


def _words(
    view: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first and second eight bytes of each string, zero past its end."""
    low = view[starts] & _LOW_BYTES[np.minimum(lengths, _WORD_BYTES)]
    high = view[starts + _WORD_BYTES] & _LOW_BYTES[np.clip(lengths - _WORD_BYTES, 0, _WORD_BYTES)]
    return low, high


def _own_use(
    pair_keys: np.ndarray,
    width: int,
    definers: np.ndarray,
    ref_file: np.ndarray,
    ref_ident: np.ndarray,
) -> np.ndarray:
    """Per reference, whether the referencing file defines the name itself.

    Most names have one definer, so a gather answers; only the rest need a search in the pairs.
    """
    pair_file, pair_ident = np.divmod(pair_keys, width)
    definer = np.zeros(len(definers), dtype=_INDEX)
    definer[pair_ident] = pair_file
    own = definer[ref_ident] == ref_file
    several = np.flatnonzero(definers[ref_ident] > 1)
    keys = ref_file[several] * width + ref_ident[several]
    at = np.minimum(np.searchsorted(pair_keys, keys), len(pair_keys) - 1)
    own[several] = pair_keys[at] == keys
    return own


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct keys; sorting beats np.unique's hashing here by far."""
    keys = np.sort(keys)
    return keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys


def _static_weights(graph: _Graph) -> np.ndarray:
    """Aider's edge weights but the query's: long compound names x10; private, ubiquitous x0.1."""
    weights = np.ones(len(graph.names))
    # Only identifiers with an edge carry rank, so only their names are worth looking at.
    referenced = np.flatnonzero(np.bincount(graph.ref_ident, minlength=len(graph.names)))
    names = graph.names
    weights[referenced] = _name_multipliers([names[k] for k in referenced.tolist()])
    weights[graph.definers > _UBIQUITOUS_DEFINERS] *= 0.1
    return weights


def _name_multipliers(names: list[str]) -> list[float]:
    """x10 for a long snake_case, kebab-case or camelCase name (one that says what it is), x0.1
    for a private one. Unlike Aider, a long name with `_` counts without a check for letters."""
    return [
        (10.0 if len(n) >= 8 and ("_" in n or "-" in n or n.lower() != n != n.upper()) else 1.0)
        * (0.1 if n[:1] == "_" else 1.0)
        for n in names
    ]


def _focus_mask(paths: list[str], focus_files: Collection[str]) -> np.ndarray:
    wanted = {normalise_path(p) for p in focus_files}
    return np.fromiter((p in wanted for p in paths), dtype=bool, count=len(paths))


def normalise_path(path: str) -> str:
    """A repository-relative path as the index spells it ("./a\\b.py" -> "a/b.py")."""
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path


def _path_matches(
    paths: list[str], components: list[set[str]], terms: frozenset[str]
) -> np.ndarray:
    """Teleport mass for files a query term names: a directory, the name or stem, a path tail.

    A term's mass is shared by the files it names and shrinks as they grow in number (1/sqrt n), so
    `src`, or the `mod` of `mod_17`, hardly takes anything from the terms that single a file out.
    """
    hits: dict[str, set[int]] = defaultdict(set)
    path_terms = [t for t in terms if "/" in t or "." in t]
    for i, parts in enumerate(components):
        for term in parts & terms:
            hits[term].add(i)
        lowered = paths[i].lower() if path_terms else ""
        for term in path_terms:
            if lowered == term or lowered.endswith("/" + term):
                hits[term].add(i)
    mass = np.zeros(len(paths))
    for matched in hits.values():
        mass[list(matched)] += len(matched) ** -1.5
    return mass


def _path_components(path: str) -> set[str]:
    *dirs, base = path.split("/")
    stem = base.rsplit(".", 1)[0] if "." in base[1:] else base
    components = {*dirs, base, stem}
    components.update(part for part in re.split(r"[^a-z0-9]+", stem) if part)
    return components


def _neighbours(graph: _Graph, weights: np.ndarray, focus: np.ndarray) -> np.ndarray:
    """Per file, how strongly it is tied to the focus files, as two halves: by the names between
    them (what a focus file uses that the file defines, and what the file uses that a focus file
    defines, each name by its weight shared among its definers), and by being in a focus file's
    directory (its package).

    PageRank alone carries rank only from user to definer, so the files that use a focus file
    (its callers, its package's `__init__`) would get nothing from it; and a file's references
    are every identifier it writes, so a local variable named as another file's method ties the
    two as much as a call does. The directory half keeps the focus's own package in view.
    """
    n = len(graph.paths)
    if not focus.any():
        return np.zeros(n)
    used = focus[graph.ref_file]
    ident = graph.ref_ident[used]
    by_ident = np.bincount(
        ident, weights=weights[ident] / graph.ref_others[used], minlength=len(weights)
    )
    ties = np.bincount(graph.pair_file, weights=by_ident[graph.pair_ident], minlength=n)
    defined = np.zeros(len(weights), dtype=bool)
    defined[graph.pair_ident[focus[graph.pair_file]]] = True
    using = defined[graph.ref_ident]
    ident = graph.ref_ident[using]
    ties += np.bincount(
        graph.ref_file[using], weights=weights[ident] / graph.definers[ident], minlength=n
    )
    folders = [path.rpartition("/")[0] for path in graph.paths]
    focus_folders = {folders[f] for f in np.flatnonzero(focus).tolist()}
    siblings = np.fromiter(map(focus_folders.__contains__, folders), dtype=float, count=n)
    ties[focus] = siblings[focus] = 0.0
    return sum((part / part.sum() for part in (ties, siblings) if part.any()), np.zeros(n))


def _strongest(near: np.ndarray, paths: list[str]) -> np.ndarray:
    """The files most tied to the focus, strongest first (ties by path)."""
    tied = np.flatnonzero(near > 0).tolist()
    tied.sort(key=lambda f: (-near[f], paths[f]))
    return np.array(tied[:_KEPT_NEIGHBOURS], dtype=_INDEX)


def _definition_matches(graph: _Graph, mentioned: np.ndarray) -> np.ndarray:
    """Per (file, name) definition, mass from the query naming it, as for path terms.

    A rare name the query names is strong evidence for the file defining it; `get` is not.
    """
    return np.where(mentioned[graph.pair_ident], graph.definers[graph.pair_ident] ** -1.5, 0.0)


@dataclass(frozen=True, slots=True)
class _Teleport:
    """Where the walk restarts: per file, and how the matched part lands on definitions.

    Most of the restart mass goes to the matched files (focus, or named by the query); a uniform
    tenth keeps every file reachable, so files far from the focus still rank by the repository's
    own structure. Aider credits a definition only with what reaches it along edges; here restarts
    at a matched file also credit its definitions (the named ones, or all alike when the file as a
    whole matched), so the query's own file shows, not just what it references.
    """

    files: np.ndarray  # sums to 1
    pairs: np.ndarray  # the matched restart mass per (file, identifier) definition

    @classmethod
    def build(cls, graph: _Graph, file_mass: np.ndarray, pair_mass: np.ndarray) -> _Teleport:
        n = len(graph.paths)
        uniform = np.full(n, 1.0 / n)
        per_file = np.bincount(graph.pair_file, minlength=n)
        spread = np.divide(file_mass, per_file, out=np.zeros(n), where=per_file > 0)
        pairs = pair_mass + spread[graph.pair_file]
        matched = file_mass + np.bincount(graph.pair_file, weights=pair_mass, minlength=n)
        total = matched.sum()
        if total <= 0:
            return cls(files=uniform, pairs=np.zeros(len(pairs)))
        files = _MATCHED_SHARE * matched / total + (1.0 - _MATCHED_SHARE) * uniform
        return cls(files=files, pairs=_MATCHED_SHARE * pairs / total)


@dataclass(frozen=True, slots=True)
class _Ranks:
    files: np.ndarray  # PageRank per file
    definitions: np.ndarray  # per definition; all definitions of one (file, name) share it


def _pagerank(graph: _Graph, weights: np.ndarray, teleport: _Teleport) -> _Ranks:
    """Personalised PageRank by power iteration over file -> identifier -> definer.

    An edge referencer -> definer carries the identifier's weight for every other definer, so a
    file's out-weight is the sum over its references of weight x other definers. Dangling files
    restart the walk by the teleport, as networkx does when given a personalisation.
    """
    n = len(graph.paths)
    ref_weight = weights[graph.ref_ident] * graph.ref_others
    out_weight = np.bincount(graph.ref_file, weights=ref_weight, minlength=n)
    dangling = out_weight == 0
    inverse = np.divide(1.0, out_weight, out=np.zeros(n), where=~dangling)
    own_weight = np.where(graph.pair_own_use, weights[graph.pair_ident], 0.0)

    x = restart = teleport.files
    for _ in range(_MAX_ITERATIONS):
        share = x * inverse  # what each unit of out-weight carries away from its file
        to_pairs = _pair_flow(graph, weights, own_weight, share)
        inflow = np.bincount(graph.pair_file, weights=to_pairs, minlength=n)
        new = _DAMPING * (inflow + x[dangling].sum() * restart) + (1.0 - _DAMPING) * restart
        change = np.abs(new - x).sum()
        x = new
        if change < n * _TOLERANCE:
            break
    to_pairs = _pair_flow(graph, weights, own_weight, x * inverse)
    restart_rate = 1.0 - _DAMPING + _DAMPING * x[dangling].sum()
    definitions = (to_pairs + restart_rate * teleport.pairs)[graph.def_pair]
    return _Ranks(files=x, definitions=definitions)


def _pair_flow(
    graph: _Graph, weights: np.ndarray, own_weight: np.ndarray, share: np.ndarray
) -> np.ndarray:
    """Rank reaching each (file, identifier) definition from the other files that reference it."""
    by_ident = np.bincount(graph.ref_ident, weights=share[graph.ref_file], minlength=len(weights))
    to_pairs = (weights * by_ident)[graph.pair_ident] - own_weight * share[graph.pair_file]
    return np.maximum(to_pairs, 0.0)  # the subtraction of a file's own use may round below zero


class _Item(NamedTuple):
    """One entry of the map: a definition, or a file with none to show, listed by its path alone."""

    index: int  # the definition's; for a path alone, the file's
    path_only: bool


@dataclass(frozen=True, slots=True)
class _Items:
    """Items in the order the budget takes them, as arrays; made `_Item`s only as far as it reads."""

    indexes: np.ndarray
    path_only: np.ndarray  # bool, per item

    def __len__(self) -> int:
        return len(self.indexes)

    def take(self, start: int, stop: int) -> list[_Item]:
        indexes, path_only = self.indexes[start:stop], self.path_only[start:stop]
        return list(map(_Item, indexes.tolist(), path_only.tolist()))


@dataclass(slots=True)
class _Shown:
    """What the items taken so far render: files (and whether with definitions), definitions."""

    files: dict[int, bool] = field(default_factory=dict)
    definitions: set[int] = field(default_factory=set)


class _Layout:
    """Ranked items (kept paths, definitions, bare paths, then focus definitions) and how they
    render: a definition inside a class is shown inside its class's outline, so each shown
    method brings the lines of the classes around it (once per class)."""

    def __init__(self, graph: _Graph, ranks: _Ranks, focus: np.ndarray, kept: np.ndarray) -> None:
        self.graph = graph
        self.ranks = ranks
        self.focus = focus
        self.kept = kept  # files taken first, by their paths: focus files, their neighbours
        n = len(graph.paths)
        by_path = np.empty(n, dtype=_INDEX)
        by_path[sorted(range(n), key=graph.paths.__getitem__)] = np.arange(n)
        # Files render by rank, focus files last; ties fall back to the path for a stable output.
        self.file_position = np.empty(n, dtype=_INDEX)
        self.file_position[np.lexsort((by_path, -ranks.files, focus))] = np.arange(n)
        self._lines: dict[int, str] = {}
        self._parents: dict[int, int | None] = {}

    def fit(self, max_tokens: int) -> RepoMap:
        """Binary-search the prefix sums of the items' costs for the longest prefix within budget.

        Costs are the exact characters each item adds to the rendering and `estimate_tokens` depends
        on the length alone, so the prefix found renders to at most `max_tokens`. Costs are worked
        out in growing chunks, only as far as the budget can reach.
        """
        max_chars = max_tokens * _CHARS_PER_TOKEN
        items = self._ranked_items(max_chars)
        costs: list[int] = []
        shown = _Shown()
        chunk = 64
        while sum(costs) <= max_chars and len(costs) < len(items):
            costs += self._costs(items.take(len(costs), len(costs) + chunk), shown)
            chunk *= 2
        count = int(np.searchsorted(np.cumsum(costs), max_chars, side="right"))
        return self.render(items.take(0, count))

    def _ranked_items(self, max_chars: int) -> _Items:
        """The items in the order they are taken, cut where no budget of `max_chars` can reach."""
        def_file = self.graph.def_file
        others = np.flatnonzero(~self.focus[def_file])
        limit = max_chars // _MIN_DEFINITION_CHARS + 1  # more definitions than this cannot fit
        if len(others) > limit:
            ranks = self.ranks.definitions[others]
            threshold = np.partition(ranks, len(ranks) - limit)[len(ranks) - limit]
            parts = (self.kept, self._sorted(others[ranks >= threshold]))
        else:
            has_definitions = np.bincount(def_file, minlength=len(self.graph.paths)) > 0
            bare = np.flatnonzero(~has_definitions & ~self.focus)
            bare = bare[np.argsort(self.file_position[bare], kind="stable")]
            in_focus = np.flatnonzero(self.focus[def_file])
            parts = (self.kept, self._sorted(others), bare, self._sorted(in_focus))
        path_only = np.repeat([True, False, True, False][: len(parts)], list(map(len, parts)))
        return _Items(np.concatenate(parts).astype(_INDEX), path_only)

    def _sorted(self, definitions: np.ndarray) -> np.ndarray:
        """By rank, then by file position and line so that ties come out the same every time."""
        lines = self.graph.def_line[definitions]
        position = self.file_position[self.graph.def_file[definitions]]
        return definitions[np.lexsort((lines, position, -self.ranks.definitions[definitions]))]

    def _costs(self, items: list[_Item], shown: _Shown) -> list[int]:
        """Characters each item adds to the rendering: its line, the lines of the classes around
        it and its file's header line, each the first time it is shown."""
        details = self.graph.details
        definitions = [item.index for item in items if not item.path_only]
        details.read(definitions)
        self._read_ancestors(definitions)
        costs = []
        for index, path_only in items:
            if path_only:
                costs.append(0 if index in shown.files else len(self.graph.paths[index]) + 1)
                shown.files.setdefault(index, False)
                continue
            cost = 0
            for d in (*self._ancestors(index), index):
                if details[d] is not None and d not in shown.definitions:
                    shown.definitions.add(d)
                    cost += len(self._line(d)) + 1
            file = int(self.graph.def_file[index])
            if cost and not shown.files.get(file, False):  # "path:" (or the colon after "path")
                cost += 1 if file in shown.files else len(self.graph.paths[file]) + 2
                shown.files[file] = True
            costs.append(cost)  # nothing if gone from the index: shown as nothing
        return costs

    def render(self, items: list[_Item]) -> RepoMap:
        details = self.graph.details
        definitions = [item.index for item in items if not item.path_only]
        details.read(definitions)
        self._read_ancestors(definitions)
        shown: dict[int, set[int]] = {}  # file -> its definitions shown
        for index, path_only in items:
            if path_only:
                shown.setdefault(index, set())
                continue
            here = [d for d in (*self._ancestors(index), index) if details[d] is not None]
            if here:
                shown.setdefault(int(self.graph.def_file[index]), set()).update(here)
        entries, lines = [], []
        for file in sorted(shown, key=lambda f: self.file_position[f]):
            here = sorted(shown[file], key=self._line_key)
            path = self.graph.paths[file]
            lines.append(f"{path}:" if here else path)
            lines.extend(self._line(item) for item in here)
            definitions = tuple(self._definition(item) for item in here)
            entries.append(MapEntry(path, float(self.ranks.files[file]), definitions))
        text = "".join(line + "\n" for line in lines)
        return RepoMap(entries=tuple(entries), text=text, tokens=estimate_tokens(text))

    def _ancestors(self, item: int) -> list[int]:
        """The definitions enclosing `item` in its file, outermost first (after _read_ancestors)."""
        chain: list[int] = []
        parent = self._parents.get(item)
        while parent is not None:
            chain.append(parent)
            parent = self._parents.get(parent)
        return chain[::-1]

    def _read_ancestors(self, definitions: Iterable[int]) -> None:
        """Find the class of each method among `definitions`, and its class, and so on: one read
        of the store per level for the candidates (the same name, earlier in the same file)."""
        details = self.graph.details
        pending = [d for d in definitions if d not in self._parents]
        while pending:
            candidates = {d: self._parent_candidates(d) for d in pending}
            details.read(chain.from_iterable(candidates.values()))
            found: dict[int, None] = {}  # the parents found, in order, each once
            for d, near in candidates.items():
                parent = next((k for k in near if self._encloses(k, d)), None)
                self._parents[d] = parent
                if parent is not None:
                    found[parent] = None
            pending = [d for d in found if d not in self._parents]

    def _parent_candidates(self, item: int) -> list[int]:
        """Definitions before `item` in its file named as its symbol's parent, nearest first."""
        definition = self.graph.details[item]
        if definition is None or "." not in definition.symbol:
            return []
        name = definition.symbol.rsplit(".", 2)[-2]
        file = self.graph.def_file
        first = int(np.searchsorted(file, file[item]))  # the file's first definition
        names = self.graph.names  # per definition
        near = []
        for k in range(item - 1, max(first, item - _PARENT_SCAN) - 1, -1):
            if names[k] == name:
                near.append(k)
                if len(near) == 4:
                    break
        return near

    def _encloses(self, parent: int, item: int) -> bool:
        outer, inner = self.graph.details[parent], self.graph.details[item]
        if outer is None or inner is None:
            return False
        return inner.symbol.rsplit(".", 1)[0] == outer.symbol

    def _definition(self, item: int) -> Definition:
        definition = self.graph.details[item]
        assert definition is not None, "only definitions still in the index are laid out"
        return definition

    def _line_key(self, item: int) -> tuple[int, str]:
        definition = self._definition(item)
        return definition.line, definition.symbol

    def _line(self, item: int) -> str:
        line = self._lines.get(item)
        if line is None:
            definition = self._definition(item)
            indent = _INDENT * definition.symbol.count(".")
            signature = _one_line_signature(definition)
            line = f"{definition.line:>{_LINE_NUMBER_WIDTH}}│ {indent}{signature}"
            self._lines[item] = line
        return line


def _one_line_signature(definition: Definition) -> str:
    """A declaration on one line: whitespace collapsed, bracket padding dropped, long ones cut."""
    text = " ".join(definition.signature.split()) or f"{definition.kind} {definition.name}"
    text = _BRACKET_PADDING.sub("", text)
    if len(text) > _MAX_SIGNATURE_CHARS:
        text = text[: _MAX_SIGNATURE_CHARS - 1] + "…"
    return text
