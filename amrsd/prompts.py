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
