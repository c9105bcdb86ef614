"""A new patient's name on the phone: read back before it is stored, corrected, or
handed to a person when it cannot be got right (speech recognition gets names wrong
more than anything else)."""

from clinic.models import Appointment, Patient

NEW_CALLER = "+919812345600"


def _at_the_name_question(call, **kwargs):
    c = call(NEW_CALLER, **kwargs)
    reply = c.say("I want to book an appointment with Dr Sharma tomorrow at 10 am")
    assert reply.expects == "name"
    return c


def _new_patients():
    return list(Patient.objects.filter(phone=NEW_CALLER).values_list("name", flat=True))


def test_a_heard_name_is_read_back_and_stored_only_after_the_yes(call, sharma):
    c = _at_the_name_question(call)
    reply = c.say("my name is Meera Nair")
    assert reply.text.startswith("I have the name as Meera Nair. Is that right?")
    assert _new_patients() == []
    reply = c.say("yes")
    assert _new_patients() == ["Meera Nair"]
    assert reply.text.startswith("Thank you, Meera Nair.")
    assert reply.text.endswith("for Meera Nair. Shall I book it?")


def test_no_asks_for_the_name_again_and_the_new_one_is_read_back(call, sharma):
    c = _at_the_name_question(call)
    c.say("my name is Meena Nair")
    reply = c.say("no")
    assert reply.text == "Sorry about that. Please say the patient's name once more, slowly."
    assert reply.expects == "name"
    reply = c.say("Meera Nair")
    assert reply.text.startswith("I have the name as Meera Nair.")
    c.say("yes")
    c.say("yes")
    assert Appointment.objects.get().patient.name == "Meera Nair"
    assert _new_patients() == ["Meera Nair"]  # the misheard one was never stored


def test_a_correction_in_the_same_breath_is_read_back(call, sharma):
    c = _at_the_name_question(call)
    c.say("my name is Meena Nair")
    reply = c.say("no, my name is Meera Nair")
    assert reply.text.startswith("I have the name as Meera Nair.")
    c.press("1")
    assert _new_patients() == ["Meera Nair"]


def test_keypad_two_rejects_the_name(call, sharma):
    c = _at_the_name_question(call)
    c.say("Meena Nair")
    reply = c.press("2")
    assert reply.text.startswith("Sorry about that.")
    assert _new_patients() == []


def test_a_name_rejected_twice_goes_to_the_front_desk(call, sharma, clinic):
    clinic.front_desk_phone = "+911122334455"
    clinic.save()
    c = _at_the_name_question(call)
    c.say("Meena Nair")
    c.say("no")
    c.say("Reena Nair")
    reply = c.say("no that is wrong")
    assert reply.transfer
    assert reply.text.startswith("Sorry, I couldn't get the name right.")
    assert _new_patients() == []
    assert "to take the caller's name" in c.last_agent.summary()


def test_without_a_front_desk_the_last_heard_name_is_kept_and_flagged(call, sharma, clinic):
    clinic.front_desk_phone = ""
    clinic.save()
    c = _at_the_name_question(call)
    c.say("Meena Nair")
    c.say("no")
    c.say("Reena Nair")
    reply = c.say("no")
    assert not reply.transfer
    assert reply.text.startswith("I'll note the name as Reena Nair for now")
    assert reply.text.endswith("Shall I book it?")  # the booking goes on
    assert _new_patients() == ["Reena Nair"]
    c.say("yes")
    assert Appointment.objects.get().patient.name == "Reena Nair"
    assert "did not confirm the name as heard (Reena Nair)" in c.last_agent.summary()


def test_a_name_already_on_the_phone_is_not_read_back(call, family, sharma):
    c = call(family[0].phone)
    c.say("book for my son with Dr Sharma tomorrow at 10 am")
    reply = c.say("Aarav")
    assert reply.text.startswith("Thank you, Aarav Kumar.")


def test_a_typed_name_is_taken_as_written(call, sharma):
    c = _at_the_name_question(call, channel="chat")
    reply = c.say("Meera Nair")
    assert reply.text.startswith("Thank you, Meera Nair.")
    assert _new_patients() == ["Meera Nair"]


def test_a_name_does_not_change_the_language_of_the_call(call, sharma):
    # Offline recognition once heard "My name is Meera Nair" as "my name guruvar" (a
    # Hindi weekday): the agent switched to Hinglish on the strength of the name.
    c = _at_the_name_question(call)
    reply = c.say("my name guruvar")
    assert reply.language == "en"
    assert reply.expects == "name"  # a weekday is not a name: asked again, in English
    reply = c.say("my name is Sunita Devi")
    assert reply.language == "en"
    assert reply.text.startswith("I have the name as Sunita Devi.")


def test_a_name_said_before_it_is_asked_does_not_change_the_language_either(call, sharma):
    c = call(NEW_CALLER)
    reply = c.say("I want to book an appointment with Dr Sharma tomorrow at 10 pm")
    assert reply.expects == "choice" and reply.language == "en"
    reply = c.say("my name guruvar")
    assert reply.language == "en"


def test_the_name_question_asked_again_after_silence_listens_for_a_name(call, sharma):
    c = _at_the_name_question(call)
    assert c.last_agent.expects == "name"
    c.say("Meera Nair")
    assert c.last_agent.expects == "name"  # the read-back: yes, no, or the name again
    c.say("yes")
    assert c.last_agent.expects == "yes_no"  # "shall I book it?"
