"""Cancelling, moving and looking up appointments by phone."""

from clinic.models import Appointment, AppointmentStatus, BookingSource
from clinic.tests.factories import AppointmentFactory, PatientFactory
from voice.tests.agent.conftest import ist, utc


def appointment_for(patient, doctor, start, **kwargs):
    return AppointmentFactory(
        clinic=patient.clinic, patient=patient, doctor=doctor, scheduled_time=start, **kwargs
    )


def test_hinglish_cancel_asks_then_cancels(call, ravi, sharma):
    appointment = appointment_for(ravi, sharma, ist(16, 11))
    c = call(ravi.phone)
    reply = c.say("mera appointment cancel kar do")
    assert reply.language == "hi-en"
    assert reply.text == (
        "Ravi Kumar, Dr. Priya Sharma ke saath kal subah 11 baje wala appointment cancel kar doon?"
    )
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED

    reply = c.say("haan")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    assert appointment.cancelled_at is not None
    assert "cancel ho gaya hai" in reply.text
    assert reply.text.endswith("Aur kuch madad chahiye?")
    assert c.last_agent.intents_detected == ["cancel_appointment"]
    assert "Cancelled appointment" in c.last_agent.summary()


def test_cancel_no_keeps_the_appointment(call, ravi, sharma):
    appointment = appointment_for(ravi, sharma, ist(16, 11))
    c = call(ravi.phone)
    c.say("I want to cancel my appointment")
    reply = c.say("no")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.SCHEDULED
    assert reply.text.startswith("Okay, the appointment stays as it is.")


def test_cancel_picks_the_appointment_of_the_named_day(call, ravi, sharma):
    appointment_for(ravi, sharma, ist(16, 11))
    friday = appointment_for(ravi, sharma, ist(17, 12))
    c = call(ravi.phone)
    reply = c.say("parso wala appointment cancel karna hai")
    assert "parso dopahar 12 baje" in reply.text
    c.say("haan ji")
    friday.refresh_from_db()
    assert friday.status == AppointmentStatus.CANCELLED
    assert Appointment.objects.filter(status=AppointmentStatus.SCHEDULED).count() == 1


def test_cancel_with_several_appointments_asks_which(call, family, sharma, gupta):
    rajesh, sunita, _ = family
    appointment_for(rajesh, sharma, ist(16, 11))
    hers = appointment_for(sunita, gupta, ist(18, 10))
    c = call(rajesh.phone)
    reply = c.say("cancel an appointment")
    assert reply.expects == "choice"
    assert len(reply.options) == 2
    reply = c.say("Sunita wala")
    assert "Sunita Kumar with Dr. Rajesh Gupta on Saturday, 18 January at 10 am" in reply.text
    c.press("1")
    hers.refresh_from_db()
    assert hers.status == AppointmentStatus.CANCELLED


def test_cancel_without_appointments_offers_a_booking(call, ravi, sharma):
    c = call(ravi.phone)
    reply = c.say("mera appointment cancel kar do")
    assert reply.text == (
        "Is number par koi aane wala appointment nahi mila. "
        "Kya naya appointment book karna chahenge?"
    )
    reply = c.say("haan")
    assert reply.expects == "choice"  # which doctor


def test_reschedule_parso_shaam_5_baje(call, ravi, sharma):
    appointment = appointment_for(ravi, sharma, ist(16, 10))
    c = call(ravi.phone)
    reply = c.say("appointment parso shaam 5 baje kar do")
    assert reply.text == (
        "Ravi Kumar ka Dr. Priya Sharma wala appointment kal subah 10 baje se badalkar "
        "parso shaam 5 baje kar doon?"
    )
    reply = c.say("haan")
    appointment.refresh_from_db()
    assert appointment.scheduled_time == utc(2031, 1, 17, 11, 30)  # Friday 17:00 IST
    assert appointment.status == AppointmentStatus.SCHEDULED
    assert Appointment.objects.count() == 1
    assert reply.text.startswith("Ho gaya! Dr. Priya Sharma ke saath appointment ab parso shaam 5")
    agent = c.last_agent
    assert agent.intents_detected == ["reschedule_appointment"]
    assert agent.appointment_created is None  # moved, not created
    assert "Moved appointment" in agent.summary()


def test_reschedule_asks_for_the_new_time(call, ravi, sharma):
    appointment = appointment_for(ravi, sharma, ist(16, 10))
    c = call(ravi.phone)
    reply = c.say("I need to reschedule my appointment")
    assert reply.text == "To which day and time should I move it?"
    reply = c.say("Saturday at 10:30")
    assert reply.text == (
        "Shall I move Ravi Kumar's appointment with Dr. Priya Sharma from tomorrow at 10 am "
        "to Saturday, 18 January at 10:30 am?"
    )
    c.say("yes")
    appointment.refresh_from_db()
    assert appointment.scheduled_time == utc(2031, 1, 18, 5, 0)


def test_reschedule_to_a_new_day_keeps_the_time(call, ravi, sharma):
    appointment = appointment_for(ravi, sharma, ist(16, 10))
    c = call(ravi.phone)
    reply = c.say("mera appointment somvar ko shift kar do")
    assert "Somvar, 20 January ko subah 10 baje kar doon?" in reply.text
    c.say("haan")
    appointment.refresh_from_db()
    assert appointment.scheduled_time == utc(2031, 1, 20, 4, 30)


def test_reschedule_into_a_taken_slot_offers_alternatives(call, ravi, sharma, clinic):
    appointment = appointment_for(ravi, sharma, ist(16, 10))
    other = PatientFactory(clinic=clinic)
    appointment_for(other, sharma, ist(17, 17), source=BookingSource.UI)
    c = call(ravi.phone)
    reply = c.say("appointment parso shaam 5 baje kar do")
    assert reply.text.startswith("Maaf kijiye, parso shaam 5 baje ka slot pehle se booked hai.")
    assert reply.options == [
        "parso shaam 4 baje",
        "parso shaam saadhe 4 baje",
        "parso shaam saadhe 5 baje",
    ]
    c.say("saadhe 5 baje")
    c.say("haan")
    appointment.refresh_from_db()
    assert appointment.scheduled_time == utc(2031, 1, 17, 12, 0)


def test_appointment_parso_kar_do_without_appointments_books(call, ravi, sharma):
    c = call(ravi.phone)
    reply = c.say("Dr Sharma appointment parso shaam 5 baje kar do")
    assert reply.text.endswith("Book kar doon?")
    c.say("haan")
    assert Appointment.objects.get().scheduled_time == utc(2031, 1, 17, 11, 30)
    assert c.last_agent.intents_detected == ["book_appointment"]


def test_when_is_my_appointment(call, ravi, sharma):
    appointment_for(ravi, sharma, ist(16, 11))
    appointment_for(ravi, sharma, ist(14, 11), status=AppointmentStatus.COMPLETED)  # past
    c = call(ravi.phone)
    reply = c.say("mera appointment kab hai")
    assert reply.text == (
        "Aane wale appointment: Ravi Kumar, Dr. Priya Sharma ke saath kal subah 11 baje. "
        "Aur kuch madad chahiye?"
    )


def test_other_callers_appointments_are_never_touched(call, ravi, sharma, clinic):
    stranger = PatientFactory(clinic=clinic, phone="+919800000042")
    theirs = appointment_for(stranger, sharma, ist(16, 11))
    c = call(ravi.phone)
    reply = c.say("cancel my appointment")
    assert reply.text.startswith("I couldn't find any upcoming appointment for this number.")
    theirs.refresh_from_db()
    assert theirs.status == AppointmentStatus.SCHEDULED


def test_reschedule_from_one_named_day_to_another(call, ravi, sharma, gupta):
    tomorrow = appointment_for(ravi, sharma, ist(16, 10))
    saturday = appointment_for(ravi, gupta, ist(18, 10))
    c = call(ravi.phone)
    reply = c.say("kal wala appointment parso kar do")
    assert reply.text == (
        "Ravi Kumar ka Dr. Priya Sharma wala appointment kal subah 10 baje se badalkar "
        "parso subah 10 baje kar doon?"
    )
    c.say("haan")
    tomorrow.refresh_from_db()
    saturday.refresh_from_db()
    assert tomorrow.scheduled_time == utc(2031, 1, 17, 4, 30)
    assert saturday.scheduled_time == utc(2031, 1, 18, 4, 30)  # untouched


def test_lookup_for_a_named_family_member(call, family, sharma, gupta):
    rajesh, sunita, _ = family
    appointment_for(rajesh, sharma, ist(16, 11))
    appointment_for(sunita, gupta, ist(17, 11))
    reply = call(rajesh.phone).say("Sunita ka appointment kab hai?")
    assert reply.text.startswith(
        "Aane wale appointment: Sunita Kumar, Dr. Rajesh Gupta ke saath parso subah 11 baje."
    )
