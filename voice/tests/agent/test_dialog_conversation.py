"""Clinic questions, transfers, confusion, endings, keypad and the session state."""

import json

from clinic.models import Appointment
from voice.agent import RuleBasedAgent, build_agent
from voice.agent.dialog import DialogState
from voice.tests.agent.conftest import NOW


def test_fees_hours_and_address_from_clinic_information(call, ravi):
    c = call(ravi.phone)
    reply = c.say("What are your fees?")
    assert reply.text == (
        "Fees: consultation: 500 rupees, follow up: 300 rupees. "
        "Is there anything else I can help with?"
    )
    reply = c.say("clinic kab khulta hai")
    assert reply.text.startswith("Clinic ka samay hai: Monday to Saturday, 9 am to 6 pm.")
    reply = c.say("address kya hai")
    assert reply.text.startswith("Hamara pata hai: 12 MG Road, Bengaluru 560001.")
    reply = c.say("is there parking?")
    assert reply.text.startswith("Parking: Free parking in the basement.")
    agent = c.last_agent
    assert agent.intents_detected == ["clinic_information"]
    assert agent.summary() == (
        "Ravi Kumar: Asked about fees. Asked about hours. Asked about address. Asked about parking."
    )


def test_hours_derived_from_doctors_when_not_written_down(call, ravi, clinic):
    clinic.information = {}
    clinic.save()
    c = call(ravi.phone)
    reply = c.say("what are your timings?")
    assert reply.text.startswith("Our timings are Monday to Sunday, 9 am to 6 pm.")


def test_doctors_list_in_devanagari(call, ravi):
    c = call(ravi.phone)
    reply = c.say("आपके यहाँ कौन कौन से डॉक्टर हैं?")
    assert reply.language == "hi"
    assert reply.text.startswith(
        "हमारे डॉक्टर हैं: Dr. Priya Sharma (General Physician) और Dr. Rajesh Gupta (Cardiologist)।"
    )


def test_question_in_the_middle_of_a_booking_then_back_to_it(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("Dr Sharma tomorrow at 10 am")
    reply = c.say("how much is the fee?")
    assert reply.text == (
        "Fees: consultation: 500 rupees, follow up: 300 rupees. "
        "Dr. Priya Sharma, tomorrow at 10 am, for Ravi Kumar. Shall I book it?"
    )
    c.say("yes")
    assert Appointment.objects.count() == 1


def test_transfer_on_request_in_english_and_hinglish(call, ravi):
    c = call(ravi.phone)
    reply = c.say("Can I talk to a person please")
    assert reply.transfer and not reply.end_call
    assert reply.text.startswith("Sure, I'm connecting you to our receptionist.")
    assert c.last_agent.intents_detected == ["transfer_to_human"]

    c = call(ravi.phone)
    reply = c.say("mujhe insaan se baat karni hai")
    assert reply.transfer
    assert reply.text.startswith("Ji, main aapko receptionist se jod rahi hoon.")
    assert "Transferred to the front desk on request." in c.last_agent.summary()


def test_receptionist_or_operator_or_keypad_zero_transfer(call, ravi):
    assert call(ravi.phone).say("operator").transfer
    assert call(ravi.phone).say("receptionist se baat karao").transfer
    assert call(ravi.phone).press("0").transfer


def test_no_transfer_without_a_front_desk_number(call, ravi, clinic):
    clinic.front_desk_phone = ""
    clinic.save()
    reply = call(ravi.phone).say("talk to a human")
    assert not reply.transfer
    assert reply.text.startswith("Sorry, no one is free to take the call right now.")


def test_three_misunderstandings_transfer_to_a_person(call, ravi):
    c = call(ravi.phone)
    first = c.say("purple elephant banana")
    assert not first.transfer
    assert first.text.startswith("Maaf kijiye, main samajh nahi paayi.")
    second = c.say("zig zag zoom")
    assert not second.transfer
    third = c.say("flibber flabber")
    assert third.transfer
    assert third.text.startswith("Asuvidha ke liye maaf kijiye.")
    agent = c.last_agent
    assert agent.sentiment() == "negative"
    assert "after repeated misunderstanding" in agent.summary()


def test_understood_turn_resets_the_misunderstanding_count(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("purple elephant")
    c.say("zig zag")
    reply = c.say("Dr Sharma tomorrow at 10 am")
    assert not reply.transfer
    assert not c.say("mumble mumble").transfer


def test_unclear_answer_to_yes_no_repeats_with_keypad_help(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("Dr Sharma tomorrow at 10 am")
    reply = c.say("banana")
    assert reply.text == (
        "Sorry, I didn't understand that. Dr. Priya Sharma, tomorrow at 10 am, for Ravi Kumar. "
        "Shall I book it? Please say yes or no, or press 1 for yes and 2 for no."
    )
    assert reply.expects == "yes_no"


def test_silence_is_not_heard(call, ravi):
    reply = call(ravi.phone).say("   ")
    assert reply.text.startswith("Maaf kijiye, aawaaz nahi aayi.")


def test_goodbyes_end_the_call(call, ravi):
    for words in ("thank you bye", "dhanyavaad", "bas", "that's all", "बस, धन्यवाद"):
        reply = call(ravi.phone).say(words)
        assert reply.end_call, words
        assert not reply.transfer
        assert reply.expects == "nothing"
    assert call(ravi.phone).say("thank you bye").text == (
        "Thank you for calling Vaani Test Clinic. Take care, goodbye!"
    )
    assert call(ravi.phone).say("बस, धन्यवाद").text.startswith("Vaani Test Clinic को कॉल करने")


def test_no_at_anything_else_ends_the_call(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("Dr Sharma kal 10 baje")
    c.say("haan")
    reply = c.say("nahi")
    assert reply.end_call
    reply = c.say("hello?")  # after the goodbye, still goodbye
    assert reply.end_call


def test_keypad_yes_at_anything_else_asks_how_to_help(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("What are your fees?")
    reply = c.press("1")
    assert reply.expects == "intent"
    assert reply.text.startswith("How can I help you?")


def test_repeat_request_repeats_the_question(call, ravi, sharma):
    c = call(ravi.phone)
    question = c.say("Dr Sharma kal subah")
    again = c.say("phir se boliye")
    assert again.text == question.text
    assert c.press("*").text == question.text


def test_chat_channel_has_no_keypad_hints(clinic, doctors, ravi):
    agent = build_agent(clinic, ravi.phone, now=NOW, channel="chat")
    agent.greet()
    reply = agent.respond("Dr Sharma kal subah")
    assert "dabakar" not in reply.text
    assert reply.options == ["kal subah 9 baje", "kal subah saadhe 9 baje", "kal subah 10 baje"]


def test_state_is_plain_json_and_restores(clinic, doctors, ravi):
    agent = build_agent(clinic, ravi.phone, now=NOW)
    agent.greet()
    agent.respond("Dr Sharma kal 10 baje")
    data = json.loads(json.dumps(agent.to_dict()))
    assert data["kind"] == "rules"
    assert data["state"]["stage"] == "confirm"
    restored = RuleBasedAgent.from_dict(agent.tools, data)
    assert restored.state == DialogState.from_dict(data["state"])
    restored.respond("haan")
    assert Appointment.objects.count() == 1


def test_language_follows_the_caller_but_not_on_one_word(call, ravi, sharma):
    c = call(ravi.phone)
    assert c.say("I would like to book with Dr Sharma tomorrow at 10 am").language == "en"
    reply = c.say("haan")  # a Hinglish "yes" from an English caller keeps English
    assert reply.language == "en"
    assert c.say("aur kya fees hai clinic ki").language == "hi-en"


def test_vocabulary_for_the_recogniser(clinic, doctors, family):
    from voice.agent.tools import ClinicTools

    words = ClinicTools(clinic, family[0].phone, now=NOW).vocabulary()
    for expected in (
        "Dr. Priya Sharma",
        "doctor Sharma",
        "Sharma",
        "Priya",
        "Cardiologist",
        "Sunita Kumar",
        "kal",
        "parso",
        "subah",
        "somvar",
        "dhanyavaad",
        "cancel",
        "parking",
        "Vaani Test Clinic",
    ):
        assert expected in words, expected


def test_questions_are_asked_again_in_the_language_the_caller_switched_to(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("Dr Sharma kal subah")  # Hinglish offer of three times
    reply = c.say("sorry, what are the fees for consultation?")
    assert reply.language == "en"
    assert reply.text == (
        "Fees: consultation: 500 rupees, follow up: 300 rupees. Dr. Priya Sharma is free "
        "tomorrow at 9 am, 9:30 am or 10 am. Which time would you like? "
        "You can also press 1, 2 or 3."
    )


def test_caller_asks_for_a_language(call, ravi):
    c = call(ravi.phone)
    reply = c.say("Can you speak in Hindi?")
    assert reply.language == "hi-en"
    assert reply.text.startswith("Boliye")
    reply = c.say("हिंदी में बात कीजिए")
    assert reply.language == "hi" and reply.text.startswith("बताइए")
    ravi.refresh_from_db()
    assert ravi.language_preference == "hi"


def test_a_name_said_during_the_booking_registers_that_patient(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("I want to book for my mother with Dr Sharma tomorrow at 10 am")  # ravi's phone
    reply = c.say("her name is Kamla Devi")
    assert reply.text.startswith("I have the name as Kamla Devi. Is that right?")
    reply = c.say("yes")
    assert reply.text.startswith("Thank you, Kamla Devi.")
    # the phone's own patient is not assumed: the booking is for Kamla
    assert reply.text.endswith("for Kamla Devi. Shall I book it?")
    c.say("y")
    appointment = Appointment.objects.get()
    assert appointment.patient.name == "Kamla Devi"
    assert appointment.patient.phone == ravi.phone
