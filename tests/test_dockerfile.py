"""The Dockerfile parser and variable expansion, against Docker's documented behaviour."""

from __future__ import annotations

import pytest
from dockyard.builder.dockerfile import DockerfileError, parse, parse_trigger
from dockyard.builder.shell_words import EXPANDING_INSTRUCTIONS, ExpansionError, expand, expand_words


def only_stage(text: str):
    return parse(text).stages[0]


def instructions(text: str):
    return only_stage("FROM scratch\n" + text).instructions


# -- lines, comments, directives --------------------------------------------------------


def test_keywords_are_case_insensitive_and_lines_are_counted():
    first, second = instructions("run echo a\n\n# comment\nWoRkDiR /app\n")
    assert (first.keyword, first.line, first.command) == ("RUN", 2, ("echo a",))
    assert (second.keyword, second.line, second.args) == ("WORKDIR", 5, ("/app",))


def test_continuations_skip_comment_lines_and_warn_on_empty_ones():
    df = parse("FROM scratch\nRUN echo a \\\n  # a comment\n\n  && echo b\n")
    (run,) = df.stages[0].instructions
    assert run.command == ("echo a   && echo b",)
    assert (run.line, run.end_line) == (2, 5)
    assert df.warnings == ("Empty continuation line found in: RUN echo a   && echo b",)


def test_continuation_at_end_of_file_ends_the_instruction():
    (run,) = instructions("RUN echo a \\")
    assert run.command == ("echo a",)


def test_escape_directive_with_backtick():
    df = parse("# escape=`\nFROM scratch\nRUN dir c:\\ `\n  && echo done\n")
    assert df.escape == "`"
    assert df.stages[0].instructions[0].command == ("dir c:\\   && echo done",)


def test_directives_only_count_before_anything_else():
    df = parse("# syntax=docker/dockerfile:1\n#escape=\\\nFROM scratch\n")
    assert df.syntax == "docker/dockerfile:1" and df.escape == "\\"
    later = parse("# hello\n# escape=`\nFROM scratch\n")
    assert later.escape == "\\"
    after_blank = parse("\n# escape=`\nFROM scratch\n")
    assert after_blank.escape == "\\"


def test_bad_directives():
    with pytest.raises(DockerfileError, match="line 2: only one escape parser directive can be used"):
        parse("# escape=`\n# escape=`\nFROM scratch\n")
    with pytest.raises(DockerfileError, match="invalid escape token '/' does not match ` or"):
        parse("# escape=/\nFROM scratch\n")


def test_byte_order_mark_and_crlf():
    (run,) = only_stage("\ufeffFROM scratch\r\nRUN a\r\n").instructions
    assert run.command == ("a",)


# -- errors name the line ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("FROM a\nRUN a\nFOO bar\n", "Dockerfile parse error line 3: unknown instruction: FOO"),
    ("FROM a\nCOPPY a b\n", "unknown instruction: COPPY (did you mean copy?)"),
    ("RUN a\n", "line 1: no build stage in current context"),
    ("", "file with no instructions"),
    ("# only a comment\n", "file with no instructions"),
    ("ARG A\n", "No image was generated"),
    ("FROM\n", "FROM requires either one or three arguments"),
    ("FROM a AS\n", "FROM requires either one or three arguments"),
    ("FROM a AS 1x\n", 'invalid name for build stage: "1x"'),
    ("FROM a AS x\nFROM b AS X\n", 'line 2: duplicate stage name "x"'),
    ("FROM a\nCOPY a\n", "COPY requires at least two arguments, but only one was provided"),
    ("FROM a\nADD a\n", "ADD requires at least two arguments"),
    ("FROM a\nWORKDIR\n", "WORKDIR requires exactly one argument"),
    ("FROM a\nUSER\n", "USER requires exactly one argument"),
    ("FROM a\nSTOPSIGNAL\n", "STOPSIGNAL requires exactly one argument"),
    ("FROM a\nEXPOSE\n", "EXPOSE requires at least one argument"),
    ("FROM a\nVOLUME\n", "VOLUME requires at least one argument"),
    ("FROM a\nVOLUME [\"\"]\n", "VOLUME specified can not be an empty string"),
    ("FROM a\nENV\n", "ENV requires at least one argument"),
    ("FROM a\nENV A\n", "ENV must have two arguments"),
    ("FROM a\nENV A=1 B\n", "Syntax error - can't find = in \"B\". Must be of the form: name=value"),
    ("FROM a\nLABEL =x\n", "LABEL names can not be blank"),
    ("FROM a\nARG\n", "ARG requires at least one argument"),
    ("FROM a\nARG =x\n", "ARG names can not be blank"),
    ("FROM a\nSHELL sh -c\n", "SHELL requires the arguments to be in JSON form"),
    ("FROM a\nSHELL []\n", "SHELL requires at least one argument"),
    ("FROM a\nCMD [\"a\", 1]\n", "arrays must be comprised of strings only"),
    ("FROM a\nONBUILD\n", "ONBUILD requires at least one argument"),
    ("FROM a\nONBUILD ONBUILD RUN a\n", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD FROM b\n", "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nonbuild maintainer me\n", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD FOO\n", "unknown instruction: FOO"),
    ("FROM a\nHEALTHCHECK\n", "HEALTHCHECK requires at least one argument"),
    ("FROM a\nHEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK CMD\n", "Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK FOO x\n", 'Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("FROM a\nHEALTHCHECK --interval=1us CMD x\n", 'Interval "interval" cannot be less than 1ms'),
    ("FROM a\nHEALTHCHECK --timeout=abc CMD x\n", 'time: invalid duration "abc"'),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "--retries cannot be negative (-1)"),
    ("FROM a\nHEALTHCHECK --retries=x CMD x\n", 'parsing "x": invalid syntax'),
    ("FROM a\nCOPY --foo=1 a b\n", "unknown flag: --foo"),
    ("FROM a\nWORKDIR --x=1 /a\n", "unknown flag: --x"),
    ("FROM a\nCOPY --from=a --from=b a b\n", "duplicate flag specified: --from"),
    ("FROM a\nCOPY --from a b\n", "missing a value on flag: --from"),
    ("FROM a\nCOPY --link=maybe a b\n", "expecting boolean value for flag --link, not: maybe"),
    ("FROM a\nCOPY --link a b\n", "the --link option requires BuildKit"),
    ("FROM a\nCOPY --parents a b\n", "the --parents option requires BuildKit"),
    ("FROM a\nRUN --mount=type=cache,target=/x make\n", "the --mount option requires BuildKit"),
    ("FROM a\nRUN --network=bridge make\n", 'invalid network mode "bridge"'),
    ("FROM a\nRUN <<EOF\necho\nEOF\n", "the classic builder does not support heredocs"),
    ("FROM a\nCOPY <<EOF /x\nhi\nEOF\n", "the classic builder does not support heredocs"),
    ("FROM a\nRUN cat << EOF\nEOF\n", "heredoc"),
])
def test_errors(text, message):
    with pytest.raises(DockerfileError) as caught:
        parse(text)
    assert message in str(caught.value)


def test_error_line_is_where_the_instruction_starts():
    with pytest.raises(DockerfileError) as caught:
        parse("FROM a\nRUN ok\nCOPY \\\n  onlyone\n")
    assert caught.value.line == 3
    assert str(caught.value).startswith("Dockerfile parse error line 3: ")


def test_shift_is_not_mistaken_for_a_heredoc():
    (run,) = instructions('RUN echo $((1<<2)) "<<EOF"\n')
    assert run.command == ('echo $((1<<2)) "<<EOF"',)


# -- FROM and stages --------------------------------------------------------------------


def test_meta_args_and_multi_stage():
    df = parse("ARG BASE=alpine\nARG TAG\n"
               "FROM --platform=$BUILDPLATFORM ${BASE}:${TAG} AS Builder\nRUN make\n"
               "from scratch as final\nCOPY --from=builder /out /\n")
    assert [a.pairs for a in df.meta_args] == [(("BASE", "alpine"),), (("TAG", None),)]
    builder, final = df.stages
    assert (builder.index, builder.name, builder.base, builder.platform) == (0, "builder", "${BASE}:${TAG}",
                                                                            "$BUILDPLATFORM")
    assert (final.name, final.base, final.platform, final.line) == ("final", "scratch", None, 5)
    assert df.stage("BUILDER") is builder and df.stage("1") is final and df.stage("0") is builder
    assert df.stage("final", before=1) is None and df.stage("alpine") is None
    assert final.instructions[0].flags == {"from": "builder"}


# -- forms of arguments -----------------------------------------------------------------


def test_exec_and_shell_forms():
    run, cmd, entrypoint, bad_json = instructions(
        'RUN ["echo", "a b"]\nCMD echo $HOME\nENTRYPOINT []\nRUN [ "not", json ]\n')
    assert (run.json_form, run.command) == (True, ("echo", "a b"))
    assert (cmd.json_form, cmd.command) == (False, ("echo $HOME",))
    assert (entrypoint.json_form, entrypoint.command) == (True, ())
    assert (bad_json.json_form, bad_json.command) == (False, ('[ "not", json ]',))


def test_run_network_flag():
    (run,) = instructions("RUN --network=none make\n")
    assert run.flags == {"network": "none"} and run.command == ("make",)


def test_copy_and_add_forms_and_flags():
    copy, add, json_copy, quoted_flag = instructions(
        "COPY --chown=app:app --chmod=640 a* b/ /dst/\n"
        "ADD http://example.com/x.tgz /x/\n"
        'COPY ["a b", "/d e/"]\n'
        'COPY --chown="1 2" a b\n')
    assert copy.flags == {"chown": "app:app", "chmod": "640"}
    assert (copy.sources, copy.destination) == (("a*", "b/"), "/dst/")
    assert add.args == ("http://example.com/x.tgz", "/x/")
    assert json_copy.json_form and json_copy.args == ("a b", "/d e/")
    assert quoted_flag.flags == {"chown": "1 2"}


def test_double_dash_ends_flags():
    (copy,) = instructions("COPY -- --weird /d\n")
    assert copy.flags == {} and copy.args == ("--weird", "/d")


def test_env_and_label_pairs_are_kept_as_written():
    env, old, label = instructions('ENV A=1 B="two words" C=a\\ b\nENV OLD  the rest  of it\n'
                                   'LABEL "com.example.x"="y" version=1\n')
    assert env.pairs == (("A", "1"), ("B", '"two words"'), ("C", "a\\ b"))
    assert old.pairs == (("OLD", "the rest  of it"),)
    assert label.pairs == (('"com.example.x"', '"y"'), ("version", "1"))
    env_map = {}
    assert [expand(v, env_map) for _, v in env.pairs] == ["1", "two words", "a b"]


def test_arg_with_and_without_default():
    (arg,) = instructions('ARG A B=2 C="x y"\n')
    assert arg.pairs == (("A", None), ("B", "2"), ("C", '"x y"'))


def test_other_instructions():
    expose, volume, json_volume, user, stop, shell, maintainer = instructions(
        "EXPOSE 80/tcp 53/udp ${PORT}\nVOLUME /a /b\nVOLUME [\"/c\"]\nUSER app:app\n"
        "STOPSIGNAL SIGKILL\nSHELL [\"powershell\", \"-command\"]\nMAINTAINER me <me@x>\n")
    assert expose.args == ("80/tcp", "53/udp", "${PORT}")
    assert volume.args == ("/a", "/b") and json_volume.args == ("/c",)
    assert user.args == ("app:app",) and stop.args == ("SIGKILL",)
    assert shell.command == ("powershell", "-command")
    assert maintainer.args == ("me <me@x>",)


def test_healthcheck():
    shell_form, exec_form, none = instructions(
        "HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=1.5s --start-interval=2s --retries=3 "
        "CMD curl -f http://localhost/ || exit 1\n"
        'HEALTHCHECK CMD ["curl", "-f", "x"]\n'
        "HEALTHCHECK none\n")
    check = shell_form.healthcheck
    assert check.test == ("CMD-SHELL", "curl -f http://localhost/ || exit 1")
    assert (check.interval, check.timeout, check.start_period, check.start_interval, check.retries) == (
        90_000_000_000, 500_000_000, 1_500_000_000, 2_000_000_000, 3)
    assert exec_form.healthcheck.test == ("CMD", "curl", "-f", "x")
    assert none.healthcheck.test == ("NONE",)


def test_onbuild_keeps_the_trigger_text_for_the_image_config():
    (onbuild,) = instructions("ONBUILD   COPY --chown=1 . /app\n")
    assert onbuild.trigger.keyword == "COPY" and onbuild.trigger.flags == {"chown": "1"}
    assert onbuild.trigger.original == "COPY --chown=1 . /app"


def test_parse_trigger_for_a_child_build():
    assert parse_trigger("RUN make").command == ("make",)
    for trigger in ("ONBUILD RUN make", "FROM x", "MAINTAINER me"):
        with pytest.raises(DockerfileError, match="ONBUILD"):
            parse_trigger(trigger)


# -- expansion --------------------------------------------------------------------------

ENV = {"PWD": "/home", "SHELL": "bash", "NULL": "", "KOREAN": "한국어"}


@pytest.mark.parametrize(("word", "expected"), [
    ("hello", "hello"),
    ("he'll'o", "hello"),
    ("he\\'llo", "he'llo"),
    ("abc\\tdef", "abctdef"),
    ('"abc\\tdef"', "abc\\tdef"),
    ("'abc\\tdef'", "abc\\tdef"),
    ("hello\\", "hello"),
    ("hello\\\\", "hello\\"),
    ('"hel\'lo"', "hel'lo"),
    ("$.", "$."),
    ("he$1x", "hex"),
    ("he$PWD", "he/home"),
    ("he\\$PWD", "he$PWD"),
    ('"he\\$PWD"', "he$PWD"),
    ("'he\\$PWD'", "he\\$PWD"),
    ("\\${}", "${}"),
    ("he${hi}xx", "hexx"),
    ("he${PWD}", "he/home"),
    ("he${XXX:-000}xx", "he000xx"),
    ("he${PWD:-000}xx", "he/homexx"),
    ("he${XXX:-$PWD}xx", "he/homexx"),
    ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
    ("he${NULL:-x}", "hex"),
    ("he${NULL-x}", "he"),
    ("he${XXX-x}", "hex"),
    ("he${XXX:+000}xx", "hexx"),
    ("he${PWD:+000}xx", "he000xx"),
    ("he${PWD:+${SHELL}}xx", "hebashxx"),
    ("he${NULL:+x}", "he"),
    ("he${NULL+x}", "hex"),
    ("he${PWD?}", "he/home"),
    ("he${NULL?}", "he"),
    ("'he${XX}'", "he${XX}"),
    ('"he\'$PWD\'"', "he'/home'"),
    ("he${PWD:+${PWD}:}xx", "he/home:xx"),
    ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
    ("${aaa}}", "}"),
    ("${aaa:-bbb {foo}", "bbb {foo"),
    ("${1:-bbb}", "bbb"),
    ("안녕$KOREAN", "안녕한국어"),
    ("${PWD#/h}", "ome"),
    ("${PWD%me}", "/ho"),
    ("${SHELL/a/A}", "bAsh"),
])
def test_expand(word, expected):
    assert expand(word, ENV) == expected


@pytest.mark.parametrize("word", [
    "he'llo", "he\\\\'llo", '"hello', '"hello\\"', "'hello", "${}", "he${}xx", "he${.}", "he${XXX:YYY}",
    "he${XXX?}", "he${XXX:?}", "he${NULL:?}", "he${PWD", "he${PWD:=000}xx", "${{aaa}", "${aaa:-bbb",
    "${aaa:-bbb ${foo}", "${:}", "${:-bbb}",
])
def test_expand_errors(word):
    with pytest.raises(ExpansionError, match="failed to process"):
        expand(word, ENV)


def test_unset_message_names_the_variable():
    with pytest.raises(ExpansionError, match='failed to process "\\$\\{X:\\?set X first\\}": X: set X first'):
        expand("${X:?set X first}", {})


def test_expand_with_backtick_escape():
    assert expand("a`$PWD", ENV, escape="`") == "a$PWD"
    assert expand("c:\\dir", ENV, escape="`") == "c:\\dir"


@pytest.mark.parametrize(("word", "expected"), [
    ("hello${space}bye", ["helloabc", "defbye"]),
    ('hello"${space}"bye', ["helloabc  defbye"]),
    ("hello${leading}def", ["hello", "ab", "cdef"]),
    ("hello\\ there", ["hello there"]),
    ('hello\\" there', ['hello"', "there"]),
    ("80 ${PORT}/udp", ["80", "443/udp"]),
    ('""', []),
])
def test_expand_words(word, expected):
    env = {"space": "abc  def", "leading": "  ab c", "PORT": "443"}
    assert expand_words(word, env) == expected


def test_which_instructions_expand():
    assert {"COPY", "ADD", "ENV", "WORKDIR", "FROM", "ONBUILD"} <= EXPANDING_INSTRUCTIONS
    assert not {"RUN", "CMD", "ENTRYPOINT"} & EXPANDING_INSTRUCTIONS
