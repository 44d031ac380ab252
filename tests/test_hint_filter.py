"""The hint leak filter, both ways: gold in disguise is rejected, pointers without it pass
(docs/algorithms.md 3.1). Each case is (hint, gold forms)."""

import json
import types

import pytest

from amrsd import hint_filter, reflection
from amrsd.rewards import feedback

HALF = r"\frac{1}{2}"

MATH_LEAKS = [
    (r"It is \frac{1}{2}; write it as \boxed{...}", [HALF]),
    ("Is it 0.50?", ["0.5"]),
    ("Could it be .5?", ["0.5"]),
    ("Try 1/2.", [HALF]),
    (r"Maybe $\dfrac{1}{2}$.", [HALF]),
    (r"Use \tfrac12 of the area.", [HALF]),
    ("Check the range 40-42.", ["42"]),
    ("Is the point (1,42)?", ["42"]),
    ("Is it forty-two?", ["42"]),
    ("The result is one half.", ["0.5"]),
    ("Two thirds of it remain.", [r"\frac{2}{3}"]),
    ("So the total is 1,000.", ["1000"]),
    ("So the total is 1000.", ["1,000"]),
    ("Is it -42?", ["42"]),
    ("Is it 42?", ["-42"]),
    (r"Write \boxed{42} at the end.", ["42"]),
    (r"$\frac{84}{2}$ is what you want.", ["42"]),
    (r"Note that $2^{10}$ is the count.", ["1024"]),
    (r"It equals $3\sqrt{13}$.", [r"3\sqrt{13}"]),
    (r"It equals \sqrt{4}.", ["2"]),
    ("The length is 42cm.", ["42"]),
    ("x = 42, check.", ["42"]),
    ("It is twenty one.", ["21"]),
    ("It is 42.0 exactly.", ["42"]),
    (r"Is the answer \boxed{\frac{3}{4}}?", ["0.75"]),
    ("Evelyn ran the farthest.", [r"\text{Evelyn}"]),
    (r"Is it $x^2 + 1$?", ["x^2+1"]),
    (r"Is it \sqrt{2}/2?", [r"\frac{\sqrt{2}}{2}"]),
    (r"Try \pi/2.", [r"\frac{\pi}{2}"]),
    ("Is it 50%?", ["0.5"]),
    ("Fifty percent of them.", [r"\frac{1}{2}"]),
    ("Is it \u00bd?", ["0.5"]),
    ("It is a half.", ["0.5"]),
    (r"Then \boxed 42.", ["42"]),
    ("Forty Two, right?", [r"\boxed{42}"]),
    ("It is 10.", [r"10\%"]),
    ("Is it 10^2?", ["100"]),
    (r"It is $1{,}000$.", ["1000"]),
    ("It is 42.", [None, 42]),
]

MATH_PASSES = [
    ("Go back to step 4.", ["42"]),
    ("Try 420 first.", ["42"]),
    ("What happens in step 3?", [r"\frac{3}{4}"]),
    ("Check the product of 6 and 7 again.", ["42"]),
    (r"Recompute $6 \times 7$ carefully.", ["42"]),
    ("Look at the second step.", ["2"]),
    ("One of the terms has the wrong sign.", ["1"]),
    ("1. Check the sign.\n2. Recompute the sum.", ["2"]),
    (r"Is \frac{1}{2} really the ratio?", ["2"]),
    ("What is the 42nd term?", ["42"]),
    ("Half of the total is spent first.", ["0.5"]),
    ("Which quantity did you forget to carry?", ["42"]),
    ("Is 4.2 the right scale?", ["42"]),
    ("Did you divide by 12 or by 21?", ["42"]),
    ("Is 0.05 the rate?", ["0.5"]),
    ("Look at 1/4 of the area.", [HALF]),
    ("Use a^2 + b^2 = c^2 here.", ["2"]),
    ("Which term is a_{12}?", ["12"]),
    ("None of the steps uses the area.", [None, "42"]),
]


@pytest.mark.parametrize("hint, answers", MATH_LEAKS)
def test_math_gold_in_any_written_form_is_rejected(hint, answers):
  assert reflection.leaks(hint, answers, [])


@pytest.mark.parametrize("hint, answers", MATH_PASSES)
def test_math_pointers_without_the_gold_pass(hint, answers):
  assert not reflection.leaks(hint, answers, [])


MCQ = ["B", "1.69"]
MCQ_LEAKS = [
    ("The answer is B.", MCQ), ("I would pick (B).", MCQ), ("Look again at option B", MCQ),
    ("B) is the one to check.", MCQ), ("<answer>B</answer>", MCQ), (r"\boxed{B}", MCQ),
    ("the answer is b", MCQ), ("Is it B?", MCQ), ("Think about 1.69 again.", MCQ),
    ("Is it A or C?", ["A", "2.49"]), ("I think A is right.", ["A", "2.49"]),
    ("Choice: A", ["A", "2.49"]), ("Option A it is.", ["A", "2.49"]),
    ("Is A correct?", ["A", "2.49"]),
    ("Consider the Mitochondrial Matrix.", ["C", "mitochondrial matrix"]),
    ("Go with the second option.", MCQ), ("Option 2 looks right.", MCQ),
    ("Is -.01 it?", ["A", "-0.01"]),
    ("So it increases with temperature?", ["D", "It increases with temperature."]),
]
MCQ_PASSES = [
    ("Because the second step divides, check it.", MCQ), ("Consider option C once more.", MCQ),
    ("A careful look at the units helps.", ["A", "2.49"]),
    ("Good start. A second look at the units helps.", ["A", "2.49"]),
    ("Are you sure about the second step?", ["A", "2.49"]),
    ("the answer is a bit off; recheck the sign.", ["A", "2.49"]),
    ("Hepatitis B-cell counts matter here.", MCQ), ("Is 21.69 plausible?", MCQ),
    ("Where does the cell make ATP?", ["C", "mitochondrial matrix"]),
    ("I would recompute the energy.", ["I", "12"]),
    ("Check the second step.", MCQ), ("Does option D fit the units?", MCQ),
]


@pytest.mark.parametrize("hint, answers", MCQ_LEAKS)
def test_mcq_letter_as_an_answer_or_option_text_is_rejected(hint, answers):
  assert reflection.leaks(hint, answers, [], verifier="mcq")


@pytest.mark.parametrize("hint, answers", MCQ_PASSES)
def test_mcq_letters_inside_words_and_articles_pass(hint, answers):
  assert not reflection.leaks(hint, answers, [], verifier="mcq")


CALLS = json.dumps([{"Action": "searchAxolotlImages", "Action_Input": json.dumps(
    {"color": "wild", "gender": "", "size": "medium", "page": 1, "limit": 16, "state": "CA"})}])
TOOL_LEAKS = ["Use searchAxolotlImages.", "call search_axolotl_images", "Search Axolotl Images?",
              "Did you ask for the wild color?", "Set size to Medium.", "limit it to 16",
              "sixteen results", "Is CA the state?"]
TOOL_PASSES = ["Only one call is needed, on the first page.",
               "Which endpoint returns pictures? Check the color parameter.",
               "Is the limit parameter set?", "Did you fill in every required argument?",
               "Is it true that gender is optional?", "The ca. figure in the docs is old."]


@pytest.mark.parametrize("hint", TOOL_LEAKS)
def test_tool_name_and_argument_values_are_rejected(hint):
  assert reflection.leaks(hint, [CALLS], [], verifier="tooluse")


@pytest.mark.parametrize("hint", TOOL_PASSES)
def test_tool_pointers_and_small_common_values_pass(hint):
  assert not reflection.leaks(hint, [CALLS], [], verifier="tooluse")


def test_tool_golds_as_dicts_or_plain_names():
  call = {"name": "getWeather", "arguments": {"city": "Oslo", "days": 3}}
  assert reflection.leaks("Call get_weather.", [call], verifier="tooluse")
  assert reflection.leaks("Ask for three days.", [call], verifier="tooluse")
  assert not reflection.leaks("Which city did the user name?", [call], verifier="tooluse")
  assert reflection.leaks("try getWeather", "getWeather", verifier="tooluse")


def test_copies_of_any_source_are_rejected_the_response_included():
  response = "first multiply the two numbers carefully and then add the carry to the tens digit"
  copied = "First, multiply the two numbers carefully and then add the carry"
  assert reflection.leaks(copied, [], [response])
  assert reflection.leaks(copied, ["B"], ["unrelated text", response], verifier="mcq")
  assert not reflection.leaks("what happens to the carry in the tens place?", [], [response])
  assert not reflection.leaks(copied, [], [])


def test_gold_answers_read_the_option_text_of_a_multiple_choice_record():
  record = {"problem": "Which score?\n\nA: -0.01\nB: 1.69\nC: 2.49", "answer": "B"}
  assert hint_filter.gold_answers(record, "mcq") == ["B", "1.69"]
  assert hint_filter.gold_answers({"answer": "(c)", "options": ["x", "y", "z"]}, "mcq") == \
      ["C", "z"]
  assert hint_filter.gold_answers({"answer": "42", "problem": "B: 3"}, "math") == ["42"]


def test_answer_spans_split_at_separators_and_keep_fractions_whole():
  spans = {text for text, _ in hint_filter.answer_spans(r"From 40-42, (1,42) and \frac{3}{4}")}
  assert spans == {"40", "42", "1", r"\frac{3}{4}"}
  spans = hint_filter.answer_spans(r"Is $6 \times 7$ or forty-two thirds right?")
  assert set(spans) == {("6 \\times 7", True), ("6", False), ("7", False), ("42", False),
                        ("42/3", False)}


def test_an_undecided_comparison_counts_as_a_leak(monkeypatch):
  from amrsd import rewards
  monkeypatch.setattr(rewards, "verify_batch", lambda *a, **k: [
      rewards.Verdict(0.0, feedback.TIMED_OUT)])
  assert reflection.leaks(r"Is it $\sqrt{5}$?", ["3"])


def test_bad_hint_type_is_a_clear_error():
  with pytest.raises(TypeError, match="hint must be str"):
    reflection.leaks(None, ["42"])


# BFCL single turn: the ground truth lists every possible value of each argument.
TRIANGLE = json.dumps([{"calculate_triangle_area": {"base": [10], "height": [5],
                                                    "unit": ["units", ""]}}])
FACTORIAL = json.dumps([{"math.factorial": {"number": [5]}}])
SPOTIFY = json.dumps([{"spotify.play": {"artist": ["Taylor Swift"], "duration": [20]}},
                      {"spotify.play": {"artist": ["Maroon 5"], "duration": [15]}}])
WEATHER = json.dumps([{"get_current_weather": {"location": ["Boston, MA", "Boston"],
                                               "unit": ["", "fahrenheit"], "live": ["", True]}}])
BFCL_LEAKS = [
    ("Use calculate_triangle_area.", TRIANGLE), ("Did you calculate triangle area?", TRIANGLE),
    ("calculateTriangleArea takes it.", TRIANGLE), ("Is the base ten?", TRIANGLE),
    ("Call math.factorial.", FACTORIAL), ("Try math_factorial.", FACTORIAL),
    ("Would factorial(...) do?", FACTORIAL), ("Use spotify.play twice.", SPOTIFY),
    ("Did you call play for each artist?", SPOTIFY), ("Is Maroon 5 in your calls?", SPOTIFY),
    ("What about Taylor Swift?", SPOTIFY), ("Play it for fifteen minutes?", SPOTIFY),
    ("Boston?", WEATHER), ("Did you ask for Fahrenheit?", WEATHER),
    ("Use get current weather.", WEATHER),
]
BFCL_PASSES = [
    ("Which parameter holds the base, and which the height?", TRIANGLE),
    ("Is the unit optional?", WEATHER), ("Is it true that live data is optional?", WEATHER),
    ("What is the factorial of the number the user gave?", FACTORIAL),
    ("Which math function computes a factorial?", FACTORIAL),
    ("How long should each song play?", SPOTIFY), ("Did you make one call per artist?", SPOTIFY),
    ("Which city did the user name, and in which scale?", WEATHER),
]


@pytest.mark.parametrize("hint, answer", BFCL_LEAKS)
def test_bfcl_names_and_every_possible_value_are_rejected(hint, answer):
  golds = hint_filter.gold_answers({"answer": answer}, "bfcl")
  assert reflection.leaks(hint, golds, [], verifier="bfcl")
  assert reflection.leaks(hint, answer, [], verifier="bfcl")  # the raw ground truth too


@pytest.mark.parametrize("hint, answer", BFCL_PASSES)
def test_bfcl_pointers_without_the_calls_pass(hint, answer):
  golds = hint_filter.gold_answers({"answer": answer}, "bfcl")
  assert not reflection.leaks(hint, golds, [], verifier="bfcl")
  assert not reflection.leaks(hint, answer, [], verifier="bfcl")


def test_bfcl_gold_answers_are_calls_with_every_possible_value():
  assert hint_filter.gold_answers({"answer": SPOTIFY}, "bfcl") == [
      {"name": "spotify.play", "arguments": {"artist": ["Taylor Swift"], "duration": [20]}},
      {"name": "spotify.play", "arguments": {"artist": ["Maroon 5"], "duration": [15]}}]
  names, values = set(), []
  for call in hint_filter.gold_answers({"answer": WEATHER}, "bfcl"):
    hint_filter._collect_calls(call, names, values)
  assert names == {"get_current_weather"}
  assert values == ["Boston, MA", "Boston", "", "fahrenheit", ""]  # True dropped; "" unchecked


# BFCL multi turn: the ground truth calls of every turn (multi_turn_base_0 and _14).
FILES = json.dumps([
    ["cd(folder='document')", "mkdir(dir_name='temp')",
     "mv(source='final_report.pdf', destination='temp')"],
    ["cd(folder='temp')", "grep(file_name='final_report.pdf',pattern='budget analysis')"],
    ["sort('final_report.pdf')"],
    ["cd(folder='..')", "mv(source='previous_report.pdf',destination='temp')",
     "cd(folder='temp')", "diff(file_name1='final_report.pdf',file_name2='previous_report.pdf')"]])
REPORT = json.dumps([
    ["cd(folder='ResearchDocs')", "find(path='.',name='report.csv')"],
    ["grep(file_name='report.csv',pattern='Quarterly Financial Overview')"],
    ["tail(file_name='report.csv',lines=5)"],
    ["message_login(user_id='USR001')", "add_contact(user_name='John Levy')",
     "send_message(receiver_id='USR005',message='Latest Quarter Performance has been well.')"]])
MULTI_TURN_LEAKS = [
    ("Call find(...) before the grep.", REPORT), ("use `find`", REPORT),
    ("Run find with the file's name.", REPORT), ("Use the find command first.", REPORT),
    ("Did you try sort on the report?", FILES), ("Is 'sort' the right tool?", FILES),
    ("Did you cd first?", FILES), ("Go back up with cd .. before the second move.", FILES),
    ("Log in with message_login first.", REPORT), ("Did you sendMessage?", REPORT),
    ("Did you add contact before messaging?", REPORT), ("Is USR005 the receiver?", REPORT),
    ("Was John Levy added?", REPORT), ("Show the last five lines.", REPORT),
    ("Did you search for budget analysis?", FILES), ("Is final_report.pdf in temp?", FILES),
    ("Look in ResearchDocs.", REPORT), ("Did you diff(...) the two reports?", FILES),
]
MULTI_TURN_PASSES = [
    ("Did you find the file first?", REPORT),
    ("Sort out which directory you are in before moving anything.", FILES),
    ("Look at the tail end of the file, not its start.", REPORT),
    ("Which folder are you in before the move?", FILES),
    ("Hmm... which directory holds the older report?", FILES),
    ("Compare the two files before you write anything.", FILES),
    ("How many lines did the user ask for?", REPORT),
    ("Is a contact needed before you message someone?", REPORT),
    ("Did you log in before sending?", REPORT),
    ("The checker says turn 2 left the state different: what did that request change?", FILES),
]


@pytest.mark.parametrize("hint, answer", MULTI_TURN_LEAKS)
def test_multi_turn_calls_in_disguise_are_rejected(hint, answer):
  golds = hint_filter.gold_answers({"answer": answer}, "bfcl_multi_turn")
  assert reflection.leaks(hint, golds, [], verifier="bfcl_multi_turn")
  assert reflection.leaks(hint, answer, [], verifier="bfcl_multi_turn")


@pytest.mark.parametrize("hint, answer", MULTI_TURN_PASSES)
def test_multi_turn_ordinary_words_that_are_tool_names_pass(hint, answer):
  golds = hint_filter.gold_answers({"answer": answer}, "bfcl_multi_turn")
  assert not reflection.leaks(hint, golds, [], verifier="bfcl_multi_turn")
  assert not reflection.leaks(hint, answer, [], verifier="bfcl_multi_turn")


def test_multi_turn_gold_answers_parse_the_call_strings():
  record = {"answer": json.dumps([["cd(folder='..')", "sort('a.txt')"],
                                  ["post_tweet(content='Hi', tags=['#a', '#b'], mentions=[])",
                                   "math.factorial(number=x)", "not a call ("]])}
  assert hint_filter.gold_answers(record, "bfcl_multi_turn") == [
      {"name": "cd", "arguments": {"folder": ".."}},
      {"name": "sort", "arguments": {"0": "a.txt"}},
      {"name": "post_tweet", "arguments": {"content": "Hi", "tags": ["#a", "#b"], "mentions": []}},
      {"name": "math.factorial", "arguments": {"number": "x"}},
      "not a call ("]
  assert hint_filter.gold_answers({"answer": ""}, "bfcl_multi_turn") == []


def test_reflect_rejects_a_multi_turn_hint_that_names_a_call():
  record = {"problem": "Move 'final_report.pdf' within document directory to 'temp'.",
            "answer": FILES}
  asked = []

  def generate(requests, attempt):
    asked.append(len(requests))
    hint = ["Call mkdir before mv.", "Does the target directory exist yet?"][attempt]
    return types.SimpleNamespace(texts=[hint] * len(requests),
                                 stop_reasons=["eos"] * len(requests))

  packets = [reflection.Packet(False, feedback="turn 1 of 4: wrong state"),
             reflection.Packet(True)]
  completions = ["[mv(source='x')]", "[cd(folder='document')]"]
  hints, stats = reflection.reflect(generate, [record], completions, packets, 2,
                                    rewards=[0.0, 1.0], verifier="bfcl_multi_turn")
  assert hints[0] == "Does the target directory exist yet?"
  assert stats.hints_rejected == 2 and asked == [2, 2]
