"""Permission modes and rules as users write them (Claude Code's conventions): parsing, precedence
(deny, then ask, then allow, then the mode), command and path matching, secrets, and "always"."""

from __future__ import annotations

import pytest

from mcode.tools import Permissions, parse_mode, parse_rule
from mcode.tools.permissions import Rule


def decide(perms: Permissions, tool: str, **args: object) -> str:
    return perms.check(tool, args).behavior


def shell(perms: Permissions, command: str) -> str:
    return decide(perms, "run_shell", command=command)


# Parsing -------------------------------------------------------------------------------------------


def test_rules_parse_as_written() -> None:
    assert parse_rule("Bash(rm -rf:*)") == Rule("Bash", "rm -rf:*")
    assert parse_rule("Bash(npm test)") == Rule("Bash", "npm test")
    assert parse_rule("Edit(src/**)") == Rule("Edit", "src/**")
    assert parse_rule("  Read(.env) ") == Rule("Read", ".env")
    assert parse_rule("Edit") == Rule("Edit", None)
    assert str(parse_rule("Write(*.lock)")) == "Write(*.lock)"


@pytest.mark.parametrize("bad", ["", "Bash(", "Bash()", "(rm)", "Bash(x) y"])
def test_malformed_rules_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid permission rule"):
        parse_rule(bad)


def test_settings_name_the_bad_rule() -> None:
    with pytest.raises(ValueError, match="Bash\\("):
        Permissions.from_settings("ask", allow=["Bash("])


def test_modes_accept_claude_code_spellings() -> None:
    assert parse_mode("default") == "ask"
    assert parse_mode("acceptEdits") == "accept-edits"
    assert parse_mode("accept-edits") == "accept-edits"
    assert parse_mode("bypassPermissions") == "auto"
    assert parse_mode("auto") == "auto"
    with pytest.raises(ValueError, match="ask, accept-edits, auto"):
        parse_mode("yolo-ish")


# Modes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "read", "edit", "shell_cmd", "commit"),
    [
        ("ask", "allow", "ask", "ask", "ask"),
        ("accept-edits", "allow", "allow", "ask", "ask"),
        ("auto", "allow", "allow", "allow", "allow"),
    ],
)
def test_modes_decide_by_kind_of_tool(
    mode: str, read: str, edit: str, shell_cmd: str, commit: str
) -> None:
    perms = Permissions.from_settings(mode)
    for tool in ("read_file", "grep", "list_files", "code_search", "git_status", "git_diff"):
        assert decide(perms, tool, path="src/a.py") == read
    for tool in ("edit_file", "multi_edit", "create_file"):
        assert decide(perms, tool, path="src/a.py") == edit
    assert shell(perms, "make test") == shell_cmd
    assert decide(perms, "git_commit", message="x", files=["a.py"]) == commit


def test_mode_can_change_during_the_session() -> None:
    perms = Permissions()
    perms.set_mode("acceptEdits")
    assert decide(perms, "edit_file", path="a.py") == "allow"


# Command rules -------------------------------------------------------------------------------------


def test_prefix_rule_matches_the_command_and_its_arguments_only() -> None:
    perms = Permissions.from_settings("auto", deny=["Bash(rm -rf:*)"])
    assert shell(perms, "rm -rf build") == "deny"
    assert shell(perms, "rm -rf") == "deny"
    assert shell(perms, "rm   -rf   build") == "deny"
    assert shell(perms, "rm file") == "allow"
    assert shell(perms, "rmdir -rf x") == "allow"


@pytest.mark.parametrize(
    "command",
    [
        "cd src && rm -rf build",
        "make; rm -rf build",
        "ls | xargs rm -rf",
        "sudo rm -rf /",
        "echo $(rm -rf build)",
        "FOO=1 rm -rf build",
        'bash -c "rm -rf build"',
        "ls\nrm -rf build",
    ],
)
def test_deny_rules_catch_the_command_anywhere_in_the_line(command: str) -> None:
    perms = Permissions.from_settings("auto", deny=["Bash(rm -rf:*)"])
    assert shell(perms, command) == "deny"


def test_deny_beats_allow_beats_mode() -> None:
    perms = Permissions.from_settings("ask", allow=["Bash(rm:*)"], deny=["Bash(rm -rf:*)"])
    denied = perms.check("run_shell", {"command": "rm -rf build"})
    assert denied.behavior == "deny"
    assert denied.rule == "Bash(rm -rf:*)"
    allowed = perms.check("run_shell", {"command": "rm notes.txt"})
    assert (allowed.behavior, allowed.rule) == ("allow", "Bash(rm:*)")
    assert shell(perms, "make") == "ask"


def test_ask_rules_ask_even_in_auto_mode_and_beat_allow() -> None:
    perms = Permissions.from_settings("auto", allow=["Bash(git:*)"], ask=["Bash(git push:*)"])
    assert shell(perms, "git push origin main") == "ask"
    assert shell(perms, "git status") == "allow"


def test_allow_rules_must_cover_every_part_of_a_command_line() -> None:
    perms = Permissions.from_settings("ask", allow=["Bash(ls:*)", "Bash(grep:*)"])
    assert shell(perms, "ls -la") == "allow"
    assert shell(perms, "ls | grep x") == "allow"
    assert shell(perms, "ls && rm -rf x") == "ask"
    assert shell(perms, "ls $(rm -rf x)") == "ask"
    assert shell(perms, "ls `rm x`") == "ask"
    assert shell(perms, "ls\nrm x") == "ask"
    assert shell(perms, "lsblk") == "ask"


def test_exact_rule_matches_only_that_command() -> None:
    perms = Permissions.from_settings("ask", allow=["Bash(npm test)"])
    assert shell(perms, "npm test") == "allow"
    assert shell(perms, "npm  test") == "allow"
    assert shell(perms, "npm test -- --watch") == "ask"


def test_bash_rules_also_govern_git_commit() -> None:
    perms = Permissions.from_settings("ask", allow=["Bash(git commit:*)"])
    assert decide(perms, "git_commit", message="m", files=["a.py"]) == "allow"
    perms = Permissions.from_settings("auto", deny=["Bash(git commit:*)"])
    assert decide(perms, "git_commit", message="m", files=["a.py"]) == "deny"


# Allow rules read commands as bash does ------------------------------------------------------------

ISSUE_RULES = ["Bash(git status)", "Bash(echo:*)", "Bash(git diff:*)", "Bash(ls:*)", "Bash(grep:*)"]


@pytest.mark.parametrize(
    "command",
    [
        "git status#; touch /tmp/x",
        "echo x > ~/.bashrc",
        "echo x >> ~/.bashrc",
        "echo x >~/.bashrc 2>&1",
        "GIT_EXTERNAL_DIFF=./evil.sh git diff",
        "git diff --output=/outside/file",
        "git diff --outp=/outside/file",
        "git diff --no-index /dev/null ~/.ssh/id_rsa",
        "git diff --ext-diff",
        "git -c core.pager=./evil.sh diff",
        "git -C ../other diff",
        "git --git-dir=/elsewhere/.git diff",
        "ls $(touch x)",
        "ls `touch x`",
        "ls\ntouch x",
        "ls; touch x",
        "ls && touch x",
        "ls || touch x",
        "ls | touch x",
        "ls & touch x",
        "(ls; touch x)",
        "{ ls; touch x; }",
        "if ls; then touch x; fi",
        "while ls; do touch x; done",
        "diff <(ls) <(ls)",
        "echo <<EOF\nhi\nEOF",
        "grep x <<< hello",
        "ls < ~/.ssh/id_rsa",
        "for f in a; do echo $f; done",
        "PATH=. git status",
        "echo 'unclosed",
        "ls \\ -la",
        "git diff *",
        "git diff $flags",
    ],
)
def test_allow_rules_do_not_cover_what_the_command_really_does(command: str) -> None:
    perms = Permissions.from_settings("ask", allow=ISSUE_RULES)
    assert shell(perms, command) == "ask"


@pytest.mark.parametrize(
    "command",
    [
        "git status",
        "git status # what changed",
        "'git' \"status\"",
        "git diff --stat HEAD~1 -- src",
        "git diff src/*.py",
        "echo $HOME",
        "ls -la 2>&1 | grep x",
        "ls >/dev/null 2>/dev/null",
        "ls &>/dev/null",
        "ls 2>&-",
        "ls \\\n  -la",
        "ls; echo done",
        "ls && echo ok || echo failed",
        "(ls; echo hi) > /dev/null",
        "{ ls; echo hi; }",
        "if ls x; then echo yes; else echo no; fi",
        "while ls x; do echo again; done",
        "! ls x",
    ],
)
def test_allow_rules_cover_every_command_in_a_line_and_harmless_redirections(command: str) -> None:
    perms = Permissions.from_settings("ask", allow=ISSUE_RULES)
    assert shell(perms, command) == "allow"


@pytest.mark.parametrize(
    ("rules", "command"),
    [
        (["Bash(sudo:*)"], "sudo ls"),
        (["Bash(env:*)", "Bash(ls:*)"], "env ls"),
        (["Bash(xargs:*)", "Bash(ls:*)"], "xargs ls"),
        (["Bash(bash:*)"], "bash -c 'ls'"),
        (["Bash(sh:*)"], "sh -c ls"),
        (["Bash(timeout:*)", "Bash(ls:*)"], "timeout 5 ls"),
        (["Bash(nice:*)", "Bash(ls:*)"], "nice ls"),
        (["Bash(nohup:*)", "Bash(ls:*)"], "nohup ls"),
        (["Bash(command:*)", "Bash(ls:*)"], "command ls"),
        (["Bash(exec:*)", "Bash(ls:*)"], "exec ls"),
        (["Bash(eval:*)"], "eval ls"),
        (["Bash(source:*)"], "source ./env.sh"),
        (["Bash(.:*)"], ". ./env.sh"),
        (["Bash(find:*)"], "find . -exec touch {} ;"),
        (["Bash(find:*)"], "find . -name '*.pyc' -delete"),
        (["Bash(find:*)"], "find . -fprint out"),
        (["Bash(git rebase:*)"], "git rebase -i -x 'make' main"),
        (["Bash(git clone:*)"], "git clone -u ./evil https://example.com/r"),
        (["Bash(git log:*)"], "git log --output=notes"),
        (["Bash(git grep:*)"], "git grep --open-files-in-pager=./evil x"),
        (["Bash(rg:*)"], "rg --pre ./evil x"),
        (["Bash(sed:*)"], "sed -i s/a/b/ file"),
        (["Bash(sort:*)"], "sort -o ~/.bashrc file"),
    ],
)
def test_wrappers_and_risky_options_ask_whatever_the_rules_say(
    rules: list[str], command: str
) -> None:
    perms = Permissions.from_settings("ask", allow=rules)
    decision = perms.check("run_shell", {"command": command})
    assert decision.behavior == "ask"
    assert "no rule can allow it" in decision.reason
    assert perms.always_rules("run_shell", {"command": command}) == []


def test_the_reason_says_why_no_rule_allows_a_command() -> None:
    perms = Permissions.from_settings("ask", allow=["Bash(git diff:*)", "Bash(echo:*)"])
    reason = perms.check("run_shell", {"command": "git diff --output=/tmp/x"}).reason
    assert "`--output`" in reason
    assert "~/.bashrc" in perms.check("run_shell", {"command": "echo x > ~/.bashrc"}).reason
    assert "GIT_DIR" in perms.check("run_shell", {"command": "GIT_DIR=x git diff"}).reason


def test_unconditional_rules_and_auto_mode_still_allow_everything() -> None:
    for perms in (
        Permissions.from_settings("ask", allow=["Bash"]),
        Permissions.from_settings("ask", allow=["Bash(*)"]),
        Permissions.from_settings("auto"),
    ):
        assert shell(perms, "echo x > out && git -c a=b diff --output=o") == "allow"


def test_rule_words_may_be_quoted() -> None:
    perms = Permissions.from_settings("ask", allow=["Bash('my tool' --check:*)"])
    assert shell(perms, '"my tool" --check x') == "allow"
    assert shell(perms, "my tool --check x") == "ask"


# Deny rules meet normalised commands ---------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "rm -rf x",
        "rm -r -f x",
        "rm -fr x",
        "rm -f -r x",
        "rm x -rf",
        "rm -R -f x",
        "rm --recursive --force x",
        "rm --rec --fo x",
        "/bin/rm -rf x",
        "./rm -rf x",
        "'rm' -rf x",
        'r"m" -rf x',
        "\\rm -rf x",
        "$'\\x72m' -rf x",
        "r\\\nm -rf x",
        "sudo rm -rf x",
        "sudo -u root rm -rf x",
        "env X=1 rm -rf x",
        "command rm -rf x",
        "ls | xargs rm -rf",
        "xargs -I{} rm -rf {}",
        "timeout 5 nice -n 2 rm -rf x",
        "find . -exec rm -rf {} +",
        "bash -c 'rm -rf x'",
        'sh -c "cd y && rm -fr x"',
        "ssh host 'rm -rf x'",
        "eval rm -rf x",
        "echo $(rm -rf x)",
        "echo `rm -rf x`",
        "cat <(rm -rf x)",
        "cat <<EOF | sh\nrm -rf x\nEOF",
        "for f in a; do rm -rf $f; done",
        "{rm,-rf,x}",
        "rm -rf 'unclosed",
        "echo 'unclosed; rm -r -f x",
    ],
)
def test_deny_rules_meet_every_spelling_of_the_command(command: str) -> None:
    perms = Permissions.from_settings("auto", deny=["Bash(rm -rf:*)"])
    assert shell(perms, command) == "deny"


@pytest.mark.parametrize("command", ["rm -r x", "rm -- -rf", "rm -f x", "ls -rf", "echo rm -rf"])
def test_deny_rules_leave_other_commands_alone(command: str) -> None:
    perms = Permissions.from_settings("auto", deny=["Bash(rm -rf:*)"])
    assert shell(perms, command) == "allow"


@pytest.mark.parametrize(
    "command",
    [
        "git push",
        "git -C . push origin main",
        "git -c user.name=x push",
        "git --git-dir=.git --work-tree=. push",
        "git --no-pager push",
        "/usr/bin/git push -f",
    ],
)
def test_git_global_options_do_not_hide_the_subcommand(command: str) -> None:
    perms = Permissions.from_settings("auto", deny=["Bash(git push:*)"])
    assert shell(perms, command) == "deny"
    assert shell(perms, "git pushy") == "allow"
    assert shell(perms, "git log --grep push") == "allow"


def test_a_git_alias_defined_on_the_command_line_asks() -> None:
    perms = Permissions.from_settings("auto", deny=["Bash(git push:*)"])
    assert shell(perms, "git -c alias.p=push p origin") == "ask"
    assert shell(perms, "git -c user.name=x commit -m m") == "allow"


def test_long_synonyms_meet_short_flags_both_ways() -> None:
    perms = Permissions.from_settings("auto", deny=["Bash(git push --force:*)"])
    assert shell(perms, "git push -f origin") == "deny"
    assert shell(perms, "git push origin main --force") == "deny"
    assert shell(perms, "git push --force-with-lease") == "allow"
    perms = Permissions.from_settings("auto", deny=["Bash(git reset --hard:*)"])
    assert shell(perms, "git reset HEAD~1 --hard") == "deny"
    assert shell(perms, "git reset --soft HEAD~1") == "allow"


def test_a_word_known_only_at_run_time_asks_instead_of_guessing() -> None:
    perms = Permissions.from_settings("auto", deny=["Bash(rm -rf:*)"])
    decision = perms.check("run_shell", {"command": "rm $flags x"})
    assert decision.behavior == "ask" and decision.rule == "Bash(rm -rf:*)"
    assert "known only when it runs" in decision.reason
    assert shell(perms, "$tool -rf x") == "ask"
    assert shell(perms, 'rm -- "$f"') == "allow"
    assert shell(perms, '"$EDITOR" notes.txt') == "allow"


def test_ask_rules_meet_normalised_commands_too() -> None:
    perms = Permissions.from_settings("auto", ask=["Bash(git push:*)"])
    assert shell(perms, "git -C sub push") == "ask"
    assert shell(perms, "sudo git push") == "ask"
    assert shell(perms, "git status") == "allow"


# Path rules ----------------------------------------------------------------------------------------


def test_edit_rules_use_gitignore_globs_from_the_repo_root() -> None:
    perms = Permissions.from_settings("ask", allow=["Edit(src/**)"])
    assert decide(perms, "edit_file", path="src/pkg/a.py") == "allow"
    assert decide(perms, "create_file", path="src/new.py") == "allow"
    assert decide(perms, "edit_file", path="tests/test_a.py") == "ask"
    assert decide(perms, "edit_file", path="./src/a.py") == "allow"


def test_write_rule_denies_every_kind_of_change_at_any_depth() -> None:
    perms = Permissions.from_settings("auto", deny=["Write(*.lock)"])
    for tool in ("edit_file", "multi_edit", "create_file"):
        assert decide(perms, tool, path="frontend/yarn.lock") == "deny"
    assert decide(perms, "edit_file", path="frontend/app.ts") == "allow"
    assert decide(perms, "read_file", path="frontend/yarn.lock") == "allow"


def test_a_symlink_cannot_dodge_a_path_rule() -> None:
    perms = Permissions.from_settings("auto", deny=["Edit(vendor/**)"])
    assert decide(perms, "edit_file", path="link.py", real_path="vendor/lib.py") == "deny"
    perms = Permissions.from_settings("ask", allow=["Edit(src/**)"])
    assert decide(perms, "edit_file", path="src/link.py", real_path="other/x.py") == "ask"


def test_read_deny_rules_hide_files() -> None:
    perms = Permissions.from_settings("auto", deny=["Read(private/**)"])
    assert decide(perms, "read_file", path="private/notes.md") == "deny"
    assert perms.denies_read("private/notes.md")
    assert not perms.denies_read("public/notes.md")


def test_tool_names_work_as_rules() -> None:
    perms = Permissions.from_settings("auto", deny=["git_commit"])
    assert decide(perms, "git_commit", message="m", files=["a"]) == "deny"
    assert shell(perms, "git commit -m x") == "allow"


# Secrets -------------------------------------------------------------------------------------------


def test_secret_files_ask_even_in_auto_mode() -> None:
    perms = Permissions.from_settings("auto", allow=["Read"])
    decision = perms.check("read_file", {"path": "config/.env"})
    assert decision.behavior == "ask"
    assert "secret" in decision.reason
    assert decide(perms, "read_file", path="config/.env.example") == "allow"
    assert decide(perms, "read_file", path="deploy/server.pem") == "ask"
    assert decide(perms, "read_file", path="link.txt", real_path=".env") == "ask"


def test_only_a_rule_naming_the_secret_unlocks_it() -> None:
    perms = Permissions.from_settings("ask", allow=["Read(.env)"])
    assert decide(perms, "read_file", path=".env") == "allow"
    assert decide(perms, "read_file", path="keys/id_rsa") == "ask"


def test_committing_a_secret_file_asks_even_when_commits_are_allowed() -> None:
    perms = Permissions.from_settings("auto", allow=["Bash(git commit:*)"])
    assert decide(perms, "git_commit", message="m", files=["a.py", ".env"]) == "ask"
    assert decide(perms, "git_commit", message="m", files=["a.py"]) == "allow"


# "always" ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "rules"),
    [
        ("npm test -- -x", ["Bash(npm test:*)"]),
        ("git push origin main", ["Bash(git push:*)"]),
        ("pytest -q tests", ["Bash(pytest:*)"]),
        ("python -m pytest -q", ["Bash(python -m pytest:*)"]),
        ("cd src && make", ["Bash(cd:*)", "Bash(make:*)"]),
        ("echo $(date)", []),
        ("ls > out", []),
        ("git status#", ["Bash(git 'status#':*)"]),
        ("'my tool' run", ["Bash('my tool':*)"]),
        ("$tool run", []),
        ("git diff | grep x", ["Bash(git diff:*)", "Bash(grep:*)"]),
    ],
)
def test_always_remembers_the_first_words_of_a_command(command: str, rules: list[str]) -> None:
    assert Permissions().always_rules("run_shell", {"command": command}) == rules


def test_always_is_remembered_for_the_session() -> None:
    perms = Permissions.from_settings("ask")
    assert shell(perms, "npm test") == "ask"
    perms.remember(perms.always_rules("run_shell", {"command": "npm test"}))
    assert shell(perms, "npm test -- --coverage") == "allow"
    assert shell(perms, "npm publish") == "ask"
    perms.remember(perms.always_rules("edit_file", {"path": "a.py"}))
    assert decide(perms, "create_file", path="b/c.py") == "allow"


def test_always_for_a_secret_names_that_file_only() -> None:
    perms = Permissions.from_settings("auto")
    perms.remember(perms.always_rules("read_file", {"path": ".env"}))
    assert decide(perms, "read_file", path=".env") == "allow"
    assert decide(perms, "read_file", path="sub/.env") == "ask"
    through_link = {"path": "env-link", "real_path": "config/.env"}
    perms.remember(perms.always_rules("read_file", through_link))
    assert decide(perms, "read_file", **through_link) == "allow"


def test_remembered_rules_do_not_override_deny() -> None:
    perms = Permissions.from_settings("ask", deny=["Bash(rm -rf:*)"])
    perms.remember(["Bash(rm:*)"])
    assert shell(perms, "rm -rf /") == "deny"
