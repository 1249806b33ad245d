"""The repo map: a ranked outline of the repository's files and key definitions in a token budget.

The approach is Aider's (`aider/repomap.py`): files are nodes, each identifier a file references and
another defines is an edge referencer -> definer, a personalised PageRank ranks the files, and each
file's rank flows along its out-edges onto the definitions it points at. A binary search finds how
many of the top definitions fit the budget, and the outline is rendered grouped by file.

Nothing is parsed here: the store hands over each file's definitions and distinct references. The
file-to-file edge list is never built: walking file -> identifier -> every definer is the same walk
but costs O(references + definitions) per iteration instead of O(references x definers), which is
what keeps a 3,000-file repository well under a second.

Unlike Aider, a file's use of its own names makes no edge: it says nothing of the file's weight to
others, and a self-loop turns a self-contained module into a rank sink. Hence no 0.1 self-edge for
names nobody references either: they get no rank and come after the used ones, by their file's rank.

Files in play (`focus_files`) and files the query names (a path, a directory, a defined name) get
most of the restart mass, so they and what they use rank high; identifiers the query mentions weigh
x10. Focus files' own definitions are listed only after every other file's definitions and the
definition-less paths have fitted, and their entries come last: the agent already has them open
(Aider leaves them out of the map altogether).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from operator import attrgetter

import numpy as np

from mcode.index.model import Definition
from mcode.index.terms import split_identifier

_DAMPING = 0.85
_TOLERANCE = 1.0e-6  # per file, on the L1 change between iterations, as networkx's pagerank
_MAX_ITERATIONS = 100
_MATCHED_SHARE = 0.9  # of the restart mass, for focus and query-matched files when there are any
_UBIQUITOUS_DEFINERS = 5

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
    same index state again, such as the REPL on every turn, can keep one and call `map`.
    """

    def __init__(self, files: Sequence[FileSymbols]) -> None:
        self._graph = _Graph.build(_unique_by_path(files))
        self._weights = _static_weights(self._graph)
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
        teleport = _Teleport.build(graph, file_mass, pair_mass)
        ranks = _pagerank(graph, np.where(mentioned, 10.0, 1.0) * self._weights, teleport)
        return _Layout(graph, ranks, focus).fit(max_tokens)

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


@dataclass(frozen=True, slots=True)
class _Graph:
    """The graph as flat arrays; identifiers are numbered in order of first definition."""

    paths: list[str]
    names: list[str]  # identifier id -> name
    definitions: list[Definition]  # every definition, file by file
    def_file: np.ndarray  # per definition
    def_pair: np.ndarray  # per definition: its (file, identifier) pair
    pair_file: np.ndarray  # per distinct (file, identifier it defines)
    pair_ident: np.ndarray
    pair_own_use: np.ndarray  # per pair: the file references it too, and so does another definer
    ref_file: np.ndarray  # per (file, identifier it references that another file defines)
    ref_ident: np.ndarray
    ref_others: np.ndarray  # per reference: how many files other than the referencer define it
    definers: np.ndarray  # per identifier: how many files define it

    @classmethod
    def build(cls, files: Sequence[FileSymbols]) -> _Graph:
        definitions = [d for file in files for d in file.definitions]
        vocab: dict[str, int] = {}
        def_ident = np.array([vocab.setdefault(d.name, len(vocab)) for d in definitions], _INDEX)
        width = max(len(vocab), 1)  # (file, identifier) pairs are keyed file * width + identifier
        file_ids = np.arange(len(files), dtype=_INDEX)
        def_file = np.repeat(file_ids, [len(file.definitions) for file in files])
        def_keys = def_file * width + def_ident
        pair_keys = _distinct(def_keys)
        pair_file, pair_ident = np.divmod(pair_keys, width)
        definers = np.bincount(pair_ident, minlength=len(vocab))
        references = [file.references for file in files]
        ref_file = np.repeat(file_ids, [len(refs) for refs in references])
        resolved = map(vocab.get, chain.from_iterable(references), repeat(-1))
        ref_ident = _as_index(resolved, len(ref_file))
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
            paths=[file.path for file in files],
            names=list(vocab),
            definitions=definitions,
            def_file=def_file,
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
    wanted = {_normalise_path(p) for p in focus_files}
    return np.fromiter((p in wanted for p in paths), dtype=bool, count=len(paths))


def _normalise_path(path: str) -> str:
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


class _Layout:
    """Ranked items (definitions, bare paths, then focus definitions) and how they render.

    An item is a definition's index d, or -(f + 1) for file f listed by its path alone.
    """

    def __init__(self, graph: _Graph, ranks: _Ranks, focus: np.ndarray) -> None:
        self.graph = graph
        self.ranks = ranks
        self.focus = focus
        n = len(graph.paths)
        by_path = np.empty(n, dtype=_INDEX)
        by_path[sorted(range(n), key=graph.paths.__getitem__)] = np.arange(n)
        # Files render by rank, focus files last; ties fall back to the path for a stable output.
        self.file_position = np.empty(n, dtype=_INDEX)
        self.file_position[np.lexsort((by_path, -ranks.files, focus))] = np.arange(n)
        self._lines: dict[int, str] = {}

    def fit(self, max_tokens: int) -> RepoMap:
        """Binary-search the prefix sums of the items' costs for the longest prefix within budget.

        Costs are the exact characters each item adds to the rendering and `estimate_tokens` depends
        on the length alone, so the prefix found renders to at most `max_tokens`. Costs are worked
        out in growing chunks, only as far as the budget can reach.
        """
        max_chars = max_tokens * _CHARS_PER_TOKEN
        items = self._ranked_items(max_chars)
        costs: list[int] = []
        seen: set[int] = set()
        chunk = 64
        while sum(costs) <= max_chars and len(costs) < len(items):
            costs += self._costs(items[len(costs) : len(costs) + chunk].tolist(), seen)
            chunk *= 2
        count = int(np.searchsorted(np.cumsum(costs), max_chars, side="right"))
        return self.render(items[:count].tolist())

    def _ranked_items(self, max_chars: int) -> np.ndarray:
        """The items in the order they are taken, cut where no budget of `max_chars` can reach."""
        def_file = self.graph.def_file
        others = np.flatnonzero(~self.focus[def_file])
        limit = max_chars // _MIN_DEFINITION_CHARS + 1  # more definitions than this cannot fit
        if len(others) > limit:
            ranks = self.ranks.definitions[others]
            threshold = np.partition(ranks, len(ranks) - limit)[len(ranks) - limit]
            return self._sorted(others[ranks >= threshold])
        has_definitions = np.bincount(def_file, minlength=len(self.graph.paths)) > 0
        bare = np.flatnonzero(~has_definitions & ~self.focus)
        bare = bare[np.argsort(self.file_position[bare], kind="stable")]
        in_focus = np.flatnonzero(self.focus[def_file])
        return np.concatenate((self._sorted(others), -(bare + 1), self._sorted(in_focus)))

    def _sorted(self, definitions: np.ndarray) -> np.ndarray:
        """By rank, then by file position and line so that ties come out the same every time."""
        picked = [self.graph.definitions[d] for d in definitions.tolist()]
        lines = _as_index(map(attrgetter("line"), picked), len(picked))
        position = self.file_position[self.graph.def_file[definitions]]
        return definitions[np.lexsort((lines, position, -self.ranks.definitions[definitions]))]

    def _costs(self, items: list[int], seen: set[int]) -> list[int]:
        """Characters each item adds to the rendering, its file's header line the first time."""
        costs = []
        for item in items:
            if item < 0:
                costs.append(len(self.graph.paths[-item - 1]) + 1)
                continue
            file = int(self.graph.def_file[item])
            cost = len(self._line(item)) + 1
            if file not in seen:
                seen.add(file)
                cost += len(self.graph.paths[file]) + 2
            costs.append(cost)
        return costs

    def render(self, items: Iterable[int]) -> RepoMap:
        shown: dict[int, list[int]] = {}
        for item in items:
            if item < 0:
                shown.setdefault(-item - 1, [])
            else:
                shown.setdefault(int(self.graph.def_file[item]), []).append(item)
        entries, lines = [], []
        for file in sorted(shown, key=lambda f: self.file_position[f]):
            here = sorted(shown[file], key=self._line_key)
            path = self.graph.paths[file]
            lines.append(f"{path}:" if here else path)
            lines.extend(self._line(item) for item in here)
            definitions = tuple(self.graph.definitions[item] for item in here)
            entries.append(MapEntry(path, float(self.ranks.files[file]), definitions))
        text = "".join(line + "\n" for line in lines)
        return RepoMap(entries=tuple(entries), text=text, tokens=estimate_tokens(text))

    def _line_key(self, item: int) -> tuple[int, str]:
        definition = self.graph.definitions[item]
        return definition.line, definition.symbol

    def _line(self, item: int) -> str:
        line = self._lines.get(item)
        if line is None:
            definition = self.graph.definitions[item]
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
