"""Every prompt template of amrsd, in one place, as plain text.

Templates use str.format fields. Users override any of them from the config
(`config.prompts.<name> = "..."`); `render(name, overrides, **fields)` applies that.
"""

TEMPLATES = {
    # The student sees this (as the user message of the chat template).
    "task": "{problem}",

    # Meta-Reflection phase 2, one template per kind of diagnostic packet.
    "reflect_with_peer": (
        "Problem:\n{problem}\n\n"
        "Your attempt (end):\n{attempt}\n\n"
        "The checker said: {feedback}\n\n"
        "An accepted solution, shown only to you:\n{peer}\n\n"
        "Compare your attempt with the accepted one. Write at most three short Socratic "
        "questions or nudges that lead to the first wrong step. Do not state the final "
        "answer, do not copy lines, do not solve the problem."),
    "reflect_with_feedback": (
        "Problem:\n{problem}\n\n"
        "Your attempt (end):\n{attempt}\n\n"
        "The checker said: {feedback}\n\n"
        "In at most three sentences, name the mistaken step and ask a question pointing to "
        "the fix, without giving the answer."),
    "reflect_success": (
        "Problem:\n{problem}\n\n"
        "Your attempt (end):\n{attempt}\n\n"
        "This attempt was correct. In at most two sentences, name the step that made it "
        "work, without repeating the answer."),

    # Meta-Reflection phase 3 and the baselines: what the teacher is conditioned on.
    "teacher_hint": (
        "{problem}\n\nHint: {hint}\n\nUse the hint, but solve the original problem yourself."),
    "teacher_reference": "{problem}\n\nReference solution: {reference}",
    "teacher_peer": "{problem}\n\nA correct solution to a similar attempt:\n{peer}",
    "teacher_feedback": "{problem}\n\nFeedback on an earlier attempt: {feedback}",
    "teacher_peer_feedback": (
        "{problem}\n\nA correct solution:\n{peer}\n\nFeedback on an earlier attempt: {feedback}"),
    "teacher_derive": (
        "{problem}\n\nReference solution: {reference}\n\n"
        "Study the reference, then derive the answer yourself."),
}


# Meta-Reflection phase 2 per domain, replacing the math-flavoured ones above; selected by
# verifier name with reflection_templates(). A useful hint points at what decides the
# answer (a property that separates the options; a tool's documented parameters and the
# values the user gave) and leaves the last step to the student.
_SCIENCE_RULE = ("Do not name the letter of any option as the answer, do not quote the text "
                 "of the correct option, do not solve the question.")
_TOOL_RULE = ("Do not write the call, the tool's name or any argument value; point to the "
              "documentation and to the user's words instead.")
DOMAIN_TEMPLATES = {
    "mcq": {
        "reflect_with_peer": (
            "Question and options:\n{problem}\n\n"
            "Your attempt (end):\n{attempt}\n\n"
            "An accepted answer, shown only to you:\n{peer}\n\n"
            "Write at most three short Socratic questions that make the solver check the fact "
            "or property that separates the options (a functional group, a unit, a trend, a "
            "mechanism, a definition) and where the attempt went wrong. " + _SCIENCE_RULE),
        "reflect_with_feedback": (
            "Question and options:\n{problem}\n\n"
            "Your attempt (end):\n{attempt}\n\n"
            "The checker said: {feedback}\n\n"
            "In at most three sentences, ask which fact rules the chosen option out and what "
            "to compare across the options. " + _SCIENCE_RULE),
        "reflect_success": (
            "Question and options:\n{problem}\n\n"
            "Your attempt (end):\n{attempt}\n\n"
            "This attempt was correct. In at most two sentences, name the fact or the "
            "reasoning step that decided it, without naming the option's letter."),
    },
    "tooluse": {
        "reflect_with_peer": (
            "Request and tool documentation:\n{problem}\n\n"
            "Your attempt (end):\n{attempt}\n\n"
            "An accepted answer, shown only to you:\n{peer}\n\n"
            "Write at most three short Socratic questions that lead to the right calls: which "
            "tool description fits the request, which parameters the documentation requires "
            "and with which JSON types, which values the user actually stated, and how many "
            "calls the request needs. " + _TOOL_RULE),
        "reflect_with_feedback": (
            "Request and tool documentation:\n{problem}\n\n"
            "Your attempt (end):\n{attempt}\n\n"
            "The checker said: {feedback}\n\n"
            "In at most three sentences, point to the part of the documentation or of the "
            "request that fixes this (a parameter's name or type, a value the user stated, "
            "one call per item asked for). " + _TOOL_RULE),
        "reflect_success": (
            "Request and tool documentation:\n{problem}\n\n"
            "Your attempt (end):\n{attempt}\n\n"
            "These calls were correct. In at most two sentences, say how the request was "
            "mapped onto the tool's parameters, without repeating the calls."),
    },
}
DOMAIN_TEMPLATES["tooluse_merged"] = DOMAIN_TEMPLATES["bfcl"] = DOMAIN_TEMPLATES["tooluse"]
# A multi-turn tool episode (amrsd.envs "bfcl_multi_turn"): {problem} is the first user
# request, {attempt} and {peer} the end of an episode's transcript ("assistant: [calls]",
# "tool <call>: <result>", "user: <next request>"), {feedback} the checker's words on the
# first wrong turn (its state differs, a call is missing).
_EPISODE = ("First request of the episode:\n{problem}\n\n"
            "End of your episode (your calls, the tools' results, the next requests):\n"
            "{attempt}\n\n")
DOMAIN_TEMPLATES["bfcl_multi_turn"] = {
    "reflect_with_peer": (
        _EPISODE +
        "The checker said: {feedback}\n\n"
        "The end of an episode that passed, shown only to you:\n{peer}\n\n"
        "Compare the two episodes at the turn the checker names. Write at most three short "
        "Socratic questions that lead there: what the state had to be before acting (the "
        "current directory, a login, what exists already), which tool result the attempt "
        "did not read, which part of the request it left out, which values the user gave. "
        + _TOOL_RULE),
    "reflect_with_feedback": (
        _EPISODE +
        "The checker said: {feedback}\n\n"
        "In at most three sentences, point to the request of that turn and to the tools' "
        "results before it: what did the user ask for that the state after the turn does "
        "not show, and what had to be true before the first call? " + _TOOL_RULE),
    "reflect_success": (
        _EPISODE +
        "This episode passed. In at most two sentences, say what made each turn work (the "
        "state checked before acting, the results read, every part of a request done), "
        "without repeating the calls."),
}


def reflection_templates(verifier: str) -> dict[str, str]:
  """The phase-2 templates for a verifier's domain, as overrides for render(); {} keeps
  the defaults (math and arithmetic)."""
  return dict(DOMAIN_TEMPLATES.get(verifier, {}))


def chat_messages(record: dict, template: str, system: str | None = None) -> list[dict]:
  """The student's chat: the user message `template` filled from the record, after a
  system message when the record has a non-empty "system" field (it wins) or `system`."""
  return with_system([{"role": "user", "content": template.format(**record)}],
                     record.get("system") or system)


def with_system(messages: list[dict] | None, system: str | None) -> list[dict] | None:
  """messages after a system message when `system` is non-empty (None stays None)."""
  if messages is None or not system:
    return messages
  return [{"role": "system", "content": system}, *messages]


def render(name: str, overrides=None, **fields) -> str:
  """Fills template `name` (from overrides when given there) with fields."""
  template = (overrides or {}).get(name) or TEMPLATES.get(name)
  if template is None:
    raise KeyError(f"unknown prompt template {name!r}; known: {', '.join(sorted(TEMPLATES))}")
  try:
    return template.format(**fields)
  except KeyError as e:
    raise KeyError(f"prompt template {name!r} uses field {{{e.args[0]}}}, which is not "
                   f"available here; available: {', '.join(sorted(fields))}") from None
