"""Command lines read as bash reads them: the words each command receives, its assignments and
redirections, and an honest account of whatever the reading could not follow."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mcode.tools.shell_syntax import Redirect, Script, Word, parse_command


def argvs(script: Script) -> list[list[str]]:
    return [[word.text for word in command.argv] for command in script.commands]


def only_word(command: str) -> Word:
    return parse_command(command).commands[-1].argv[-1]  # substitutions come first


# Commands and separators ----------------------------------------------------------------------------


def test_a_hash_inside_a_word_is_not_a_comment() -> None:
    script = parse_command("git status#; touch /tmp/x")
    assert argvs(script) == [["git", "status#"], ["touch", "/tmp/x"]]
    assert not script.unparsed


def test_a_real_comment_is_ignored() -> None:
    script = parse_command("git status  # note; rm -rf x")
    assert argvs(script) == [["git", "status"]]
    assert not script.unparsed


@pytest.mark.parametrize(
    ("line", "compound"),
    [
        ("ls -l; wc -l", False),
        ("ls -l && wc -l", False),
        ("ls -l || wc -l", False),
        ("ls -l | wc -l", False),
        ("ls -l |& wc -l", False),
        ("ls -l & wc -l", False),
        ("ls -l\nwc -l", False),
        ("\n  ls -l\n\nwc -l\n", False),
        ("(ls -l; wc -l)", True),
        ("{ ls -l; wc -l; }", True),
        ("if ls -l; then wc -l; fi", True),
        ("while ls -l; do wc -l; done", True),
        ("until ls -l; do wc -l; done", True),
        ("! ls -l && wc -l", True),
    ],
)
def test_lists_and_compound_statements_expose_each_simple_command(
    line: str, compound: bool
) -> None:
    script = parse_command(line)
    assert argvs(script) == [["ls", "-l"], ["wc", "-l"]]
    assert script.compound == compound and not script.unparsed


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("for f in *.py; do rm y; done", "a for loop"),
        ("case x in a) rm y;; esac", "a case statement"),
        ("f() { rm y; }; f", "a function definition"),
        ("[[ -f x ]] && rm y", "a [ ], [[ ]] or (( )) test"),
        ("export PATH=.; rm y", "export, declare, local or readonly"),
    ],
)
def test_unmodelled_statements_are_reported_but_their_commands_still_found(
    line: str, what: str
) -> None:
    script = parse_command(line)
    assert what in script.unparsed
    assert ["rm", "y"] in argvs(script)


# Words ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["rm", "'rm'", '"rm"', 'r"m"', "r'm'", "\\rm", "$'\\x72m'"])
def test_quotes_and_escapes_resolve_to_the_word_bash_runs(spelling: str) -> None:
    [command] = parse_command(f"{spelling} -rf x").commands
    assert [word.text for word in command.argv] == ["rm", "-rf", "x"]
    assert all(word.static for word in command.argv)


def test_quoted_text_keeps_its_spaces_and_escapes() -> None:
    [command] = parse_command("""echo "a  b" 'c\\d' "q\\"x" a\\ b $'t\\tu'""").commands
    assert [word.text for word in command.argv] == ["echo", "a  b", "c\\d", 'q"x', "a b", "t\tu"]


@pytest.mark.parametrize(
    ("line", "head"),
    [
        ("echo $HOME", ""),
        ('echo "$HOME/x"', ""),
        ("echo pre${x}", "pre"),
        ("echo src/*.py", "src/"),
        ("echo *.py", ""),
        ("echo ~/x", ""),
        ("echo a{b,c}", "a"),
        ("echo $(date)", ""),
    ],
)
def test_words_known_only_at_run_time_keep_what_is_fixed(line: str, head: str) -> None:
    word = only_word(line)
    assert not word.static and word.head == head
    assert parse_command(line).expansion


@pytest.mark.parametrize(
    "line", ["echo '*.py'", "echo \\*", "echo stash@{0}", "echo {}", "echo a~"]
)
def test_quoted_or_inert_specials_stay_static(line: str) -> None:
    assert only_word(line).static


def test_line_continuations_between_words_join_like_bash() -> None:
    script = parse_command("ls \\\n  -la \\\n  src")
    assert argvs(script) == [["ls", "-la", "src"]]
    assert not script.unparsed


@pytest.mark.parametrize("line", ["r\\\nm -rf x", "rm 'a'\\ b", "ls \\ -la", "ls\r-la"])
def test_escapes_the_grammar_might_read_differently_from_bash_are_unparsed(line: str) -> None:
    assert parse_command(line).unparsed


# Assignments, redirections, substitutions ----------------------------------------------------------


def test_assignments_are_named_and_their_substitutions_found() -> None:
    script = parse_command("GIT_EXTERNAL_DIFF=./evil.sh A=$(id) git diff")
    assert argvs(script) == [["id"], ["git", "diff"]]
    assert script.commands[1].assignments == ("GIT_EXTERNAL_DIFF", "A")
    assert script.substitution and not script.backticks


def test_a_bare_assignment_is_a_command_without_words() -> None:
    [command] = parse_command("PATH=.").commands
    assert command.argv == () and command.assignments == ("PATH",)


def test_redirections_are_kept_with_their_command() -> None:
    [command] = parse_command("echo x > ~/.bashrc 2>&1").commands
    assert [word.text for word in command.argv] == ["echo", "x"]
    assert command.redirects == (
        Redirect(">", None, Word("~/.bashrc", "")),
        Redirect(">&", "2", Word("1", "1")),
    )


def test_words_after_a_redirection_still_belong_to_the_command() -> None:
    [command] = parse_command("echo > out x y").commands
    assert [word.text for word in command.argv] == ["echo", "x", "y"]
    assert [r.target.text for r in command.redirects if r.target] == ["out"]


def test_a_redirection_of_a_group_applies_to_each_command_in_it() -> None:
    script = parse_command("{ ls; git log; } > out")
    assert all(c.redirects == (Redirect(">", None, Word("out", "out")),) for c in script.commands)


def test_substitutions_are_flagged_and_parsed() -> None:
    script = parse_command("echo `rm a` $(rm b) <(rm c) >(rm d)")
    assert script.substitution and script.backticks and script.process_substitution
    assert [argv for argv in argvs(script) if argv[0] == "rm"] == [
        ["rm", "a"],
        ["rm", "b"],
        ["rm", "c"],
        ["rm", "d"],
    ]


def test_here_documents_carry_their_body() -> None:
    script = parse_command("cat <<'EOF' && rm x\n$HOME `id`\nEOF")
    assert script.heredoc
    assert sorted(argvs(script)) == [["cat"], ["rm", "x"]]
    [body] = next(c for c in script.commands if c.redirects).redirects
    assert body.operator == "<<" and body.target == Word("$HOME `id`\n", "$HOME `id`\n")


def test_backticks_in_an_unquoted_here_document_are_unparsed() -> None:
    script = parse_command("cat <<EOF\nhi `rm -rf x`\nEOF")
    assert "backticks in a here-document" in script.unparsed
    [body] = script.commands[0].redirects
    assert body.target is not None and body.target.head == "hi "


@pytest.mark.parametrize(
    "line",
    [
        "echo 'unclosed",
        'echo "unclosed',
        "echo $(ls",
        "if true; then ls",
        "ls ; ; ls",
        "{rm,-rf,x}",
        'echo $"x"',
        "echo ${x:-$(id)}",
        "echo ${!name}",
        "echo $((1 + 2))",
    ],
)
def test_what_is_not_understood_is_reported(line: str) -> None:
    assert parse_command(line).unparsed


def test_deep_nesting_is_reported_not_crashed_on() -> None:
    line = "echo " + "$(echo " * 400 + "x" + ")" * 400
    assert parse_command(line).unparsed


def test_parsing_is_quick_and_safe_across_threads() -> None:
    lines = [
        f"git diff --stat HEAD~{i} && ls -la src/{i} | grep -v x > /dev/null" for i in range(600)
    ]
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        scripts = list(pool.map(parse_command, lines))
    assert time.perf_counter() - started < 30  # a generous ceiling: ~1 ms each when idle
    assert all(len(s.commands) == 3 and not s.unparsed for s in scripts)
    assert argvs(scripts[7])[0] == ["git", "diff", "--stat", "HEAD~7"]
