"""Booking dialogs of the rule-based agent, end to end through ``respond()``."""

from clinic import services
from clinic.models import Appointment, BookingSource, Patient, ScheduleExceptionKind
from clinic.tests.factories import PatientFactory, ScheduleExceptionFactory
from voice.tests.agent.conftest import CALL_SID, NOW, ist, utc


def only_appointment():
    appointments = list(Appointment.objects.all())
    assert len(appointments) == 1, appointments
    return appointments[0]


def test_english_booking_confirms_then_books_at_the_right_utc_time(call, ravi, sharma):
    c = call(ravi.phone)
    assert c.replies[0].text.startswith("Namaste Ravi ji!")  # known caller, his language

    reply = c.say("I want to book an appointment with Dr. Sharma tomorrow at 10 am")
    assert reply.language == "en"
    assert reply.expects == "yes_no"
    assert reply.text == "Dr. Priya Sharma, tomorrow at 10 am, for Ravi Kumar. Shall I book it?"
    assert not Appointment.objects.exists()  # nothing before the yes

    reply = c.say("yes")
    appointment = only_appointment()
    assert appointment.scheduled_time == utc(2031, 1, 16, 4, 30)  # 10:00 IST
    assert appointment.source == BookingSource.VOICE
    assert appointment.call_sid == CALL_SID
    assert (appointment.patient, appointment.doctor) == (ravi, sharma)
    assert reply.text.startswith(
        "Done! Ravi Kumar's appointment with Dr. Priya Sharma is booked for tomorrow at 10 am."
    )
    assert f"Your appointment number is {appointment.pk}." in reply.text
    assert reply.expects == "yes_no"  # "anything else?"
    agent = c.last_agent
    assert agent.appointment_created == appointment.pk
    assert agent.intents_detected == ["book_appointment"]
    assert agent.patient_id == ravi.pk
    ravi.refresh_from_db()
    assert ravi.language_preference == "en"  # what he spoke, saved


def test_hindi_devanagari_booking_is_answered_in_devanagari(call, ravi, sharma):
    c = call(ravi.phone)
    reply = c.say("मुझे कल सुबह 10 बजे डॉक्टर शर्मा से मिलना है")
    assert reply.language == "hi"
    assert "कल सुबह 10 बजे" in reply.text
    assert reply.text.endswith("बुक कर दूँ?")

    reply = c.say("हाँ जी")
    appointment = only_appointment()
    assert appointment.scheduled_time == utc(2031, 1, 16, 4, 30)
    assert reply.text.startswith("हो गया!")
    ravi.refresh_from_db()
    assert ravi.language_preference == "hi"


def test_hinglish_booking_with_kal_subah_offers_real_morning_slots(call, ravi, sharma):
    c = call(ravi.phone)
    reply = c.say("Dr Sharma ke saath kal subah appointment chahiye")
    assert reply.language == "hi-en"
    assert reply.expects == "choice"
    assert "kal subah 9 baje, saadhe 9 baje ya 10 baje khaali hai" in reply.text
    assert reply.options == ["kal subah 9 baje", "kal subah saadhe 9 baje", "kal subah 10 baje"]
    free = services.available_slots(doctor=sharma, day=ist(16, 0).date(), now=NOW)
    assert [s.start for s in free[:3]] == [
        utc(2031, 1, 16, 3, 30),
        utc(2031, 1, 16, 4, 0),
        utc(2031, 1, 16, 4, 30),
    ]

    reply = c.say("saadhe 9 baje wala")
    assert (
        reply.text
        == "Dr. Priya Sharma ke saath kal subah saadhe 9 baje, Ravi Kumar ke liye. Book kar doon?"
    )
    reply = c.say("haan ji kar dijiye")
    assert only_appointment().scheduled_time == utc(2031, 1, 16, 4, 0)
    assert "book ho gaya hai" in reply.text
    ravi.refresh_from_db()
    assert ravi.language_preference == "hi-en"


def test_taken_slot_offers_the_nearest_free_ones(call, ravi, sharma, clinic):
    other = PatientFactory(clinic=clinic)
    services.book_appointment(
        clinic=clinic, patient_id=other.pk, doctor_id=sharma.pk, scheduled_time=ist(16, 10), now=NOW
    )
    c = call(ravi.phone)
    reply = c.say("Book Dr Sharma tomorrow at 10 am please")
    assert reply.text.startswith("Sorry, tomorrow at 10 am is already booked.")
    assert "tomorrow at 9 am, 9:30 am or 10:30 am" in reply.text
    assert reply.options == ["tomorrow at 9 am", "tomorrow at 9:30 am", "tomorrow at 10:30 am"]

    reply = c.say("the second one")
    assert "tomorrow at 9:30 am" in reply.text and reply.expects == "yes_no"
    c.say("yes")
    mine = Appointment.objects.get(patient=ravi)
    assert mine.scheduled_time == utc(2031, 1, 16, 4, 0)


def test_slot_taken_between_question_and_yes_is_explained_not_double_booked(
    call, ravi, sharma, clinic
):
    c = call(ravi.phone)
    c.say("I want an appointment with Dr Sharma tomorrow at 10 am")
    other = PatientFactory(clinic=clinic)
    services.book_appointment(  # someone at the front desk was quicker
        clinic=clinic, patient_id=other.pk, doctor_id=sharma.pk, scheduled_time=ist(16, 10), now=NOW
    )
    reply = c.say("yes")
    assert not Appointment.objects.filter(patient=ravi).exists()
    assert reply.text.startswith("Sorry, tomorrow at 10 am is already booked.")
    assert reply.expects == "choice" and len(reply.options) == 3
    c.press("1")
    c.press("1")
    assert Appointment.objects.get(patient=ravi).scheduled_time == utc(2031, 1, 16, 3, 30)


def test_doctor_on_leave_that_day_is_said_and_next_days_offered(call, ravi, sharma):
    ScheduleExceptionFactory(
        doctor=sharma, date=ist(16, 0).date(), kind=ScheduleExceptionKind.LEAVE
    )
    c = call(ravi.phone)
    reply = c.say("Dr Sharma ke saath kal subah 10 baje appointment chahiye")
    assert reply.text.startswith("Dr. Priya Sharma kal chhutti par hain.")
    assert "parso subah saadhe 9 baje, 10 baje ya saadhe 10 baje" in reply.text
    c.say("10 baje wala")
    c.say("haan")
    assert only_appointment().scheduled_time == utc(2031, 1, 17, 4, 30)  # Friday 10:00


def test_several_patients_on_one_phone_asks_which_and_books_for_that_one(call, family, sharma):
    c = call(family[0].phone)
    assert c.replies[0].text.startswith("Namaste!")  # nobody greeted by name
    reply = c.say("I want to book with Dr Sharma tomorrow at 10 am")
    assert reply.expects == "choice"
    assert "Aarav Kumar, Rajesh Kumar and Sunita Kumar" in reply.text
    assert reply.options == ["Aarav Kumar", "Rajesh Kumar", "Sunita Kumar", "Someone else"]

    reply = c.say("Sunita")
    assert reply.text.endswith("for Sunita Kumar. Shall I book it?")
    c.say("yes please")
    sunita = family[1]
    assert only_appointment().patient == sunita
    sunita.refresh_from_db()
    assert sunita.language_preference == "en"
    assert family[0].language_preference == "hi"  # the others are left alone


def test_several_patients_choice_by_keypad(call, family, sharma):
    c = call(family[0].phone)
    c.say("Dr Sharma kal 10 baje")
    reply = c.press("1")  # the menu is alphabetical: Aarav first
    assert "Aarav Kumar ke liye" in reply.text
    c.press("1")
    assert only_appointment().patient.name == "Aarav Kumar"


def test_named_patient_in_the_request_is_not_asked_again(call, family, sharma):
    c = call(family[0].phone)
    reply = c.say("Sunita ke liye Dr Priya Sharma kal 10 baje")
    assert reply.expects == "yes_no"
    assert "Sunita Kumar ke liye" in reply.text


def test_someone_else_on_a_family_phone_is_registered(call, family, sharma):
    c = call(family[0].phone)
    c.say("Dr Sharma kal 10 baje appointment chahiye")
    reply = c.say("koi aur")
    assert reply.expects == "name"
    reply = c.say("Meera Kumar")
    assert reply.text.startswith("Maine naam Meera Kumar suna. Kya yeh sahi hai?")
    reply = c.say("haan")
    assert reply.text.startswith("Dhanyavaad, Meera Kumar ji.")
    c.say("haan")
    assert only_appointment().patient.name == "Meera Kumar"
    assert Patient.objects.filter(phone=family[0].phone).count() == 4


def test_new_caller_is_asked_the_name_and_registered_with_the_language(call, sharma, clinic):
    phone = "+919812345678"
    c = call(phone)
    assert c.replies[0].text.startswith("Namaste! Vaani Test Clinic mein aapka swagat hai.")
    reply = c.say("I want to book an appointment with Dr Sharma tomorrow at 10 am")
    assert reply.expects == "name"
    assert reply.text == "May I have the patient's full name, please?"

    reply = c.say("my name is Anil Verma")
    assert reply.text == (
        "I have the name as Anil Verma. Is that right? "
        "Please say yes or no, or press 1 for yes and 2 for no."
    )
    assert reply.expects == "name"  # yes/no, or the name again: listened for as a name
    assert not Patient.objects.filter(phone=phone).exists()  # nothing stored before the yes
    reply = c.say("yes")
    patient = Patient.objects.get(clinic=clinic, phone=phone)
    assert patient.name == "Anil Verma"
    assert patient.language_preference == "en"
    assert reply.text.startswith("Thank you, Anil Verma.")
    assert reply.text.endswith("Shall I book it?")
    c.say("yes")
    assert only_appointment().patient == patient
    assert c.last_agent.patient_id == patient.pk
    assert "Registered new patient Anil Verma." in c.last_agent.summary()


def test_new_hinglish_caller_bare_name_answer(call, sharma, clinic):
    c = call("+919812345679")
    reply = c.say("mujhe kal shaam 5 baje Dr Sharma se milna hai")
    assert reply.text == "Kripya mareez ka poora naam bataiye."
    c.say("ji, Pooja Sharma")
    c.say("haan ji")
    patient = Patient.objects.get(phone="+919812345679")
    assert (patient.name, patient.language_preference) == ("Pooja Sharma", "hi-en")


def test_devanagari_name_is_kept_in_devanagari(call, sharma, clinic):
    c = call("+919812345670")
    c.say("मुझे कल सुबह 10 बजे डॉक्टर शर्मा से मिलना है")
    reply = c.say("मेरा नाम रवि है")
    assert reply.text.startswith("मैंने नाम रवि सुना।")
    reply = c.say("हाँ")
    patient = Patient.objects.get(phone="+919812345670")
    assert (patient.name, patient.language_preference) == ("रवि", "hi")
    assert reply.text.startswith("धन्यवाद, रवि जी।")


def test_dtmf_slot_choice_and_yes(call, ravi, sharma):
    c = call(ravi.phone)
    reply = c.say("Dr Sharma kal subah")
    assert "1, 2 ya 3 dabakar bhi chun sakte hain" in reply.text
    reply = c.press("3")
    assert "kal subah 10 baje" in reply.text and reply.expects == "yes_no"
    reply = c.press("1")
    assert only_appointment().scheduled_time == utc(2031, 1, 16, 4, 30)


def test_dtmf_no_does_not_book_and_asks_for_another_time(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("Book with Dr Sharma tomorrow at 10 am")
    reply = c.press("2")
    assert not Appointment.objects.exists()
    assert reply.text == "Okay, I haven't booked it. Which other day or time would suit you?"
    reply = c.say("day after tomorrow at 11")
    assert "on Friday, 17 January at 11 am" in reply.text
    c.say("yes")
    assert only_appointment().scheduled_time == utc(2031, 1, 17, 5, 30)


def test_no_with_a_new_time_proposes_that_time(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("Dr Sharma kal 10 baje")
    reply = c.say("nahi, 11 baje")
    assert "kal subah 11 baje" in reply.text
    c.say("haan")
    assert only_appointment().scheduled_time == utc(2031, 1, 16, 5, 30)


def test_asks_which_doctor_when_none_named(call, ravi, sharma, gupta):
    c = call(ravi.phone)
    reply = c.say("I need an appointment tomorrow morning")
    assert reply.expects == "choice"
    assert "Dr. Priya Sharma (General Physician) and Dr. Rajesh Gupta (Cardiologist)" in reply.text
    reply = c.say("the heart doctor")
    assert "Dr. Rajesh Gupta is free tomorrow at 9 am, 9:30 am or 10 am" in reply.text


def test_availability_question_then_booking(call, ravi, sharma):
    c = call(ravi.phone)
    reply = c.say("Is Dr Sharma available tomorrow evening?")
    assert reply.text.startswith("Dr. Priya Sharma is free tomorrow at 4 pm, 4:30 pm or 5 pm.")
    reply = c.say("5 pm")
    c.say("yes")
    assert only_appointment().scheduled_time == utc(2031, 1, 16, 11, 30)
    assert c.last_agent.intents_detected == ["ask_doctor_availability", "book_appointment"]


def test_unknown_doctor_name_is_said(call, ravi, sharma, gupta):
    c = call(ravi.phone)
    reply = c.say("doctor Verma se milna hai")
    assert reply.text.startswith("Maaf kijiye, hamare yahan Dr. Verma nahi hain.")
    assert reply.expects == "choice"


def test_low_confidence_yes_is_asked_again(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("Dr Sharma tomorrow at 10 am")
    reply = c.say("yes", confidence=0.2)
    assert not Appointment.objects.exists()
    assert reply.text.startswith("Sorry, the line is not clear.")
    assert "press 1 for yes and 2 for no" in reply.text
    c.say("yes", confidence=0.9)
    assert Appointment.objects.count() == 1


def test_yes_and_goodbye_in_one_breath_books_and_ends(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("Dr Sharma kal 10 baje")
    reply = c.say("haan theek hai, dhanyavaad bye")
    assert Appointment.objects.count() == 1
    assert reply.end_call
    assert "book ho gaya hai" in reply.text and "dhanyavaad" in reply.text.lower()


def test_summary_and_sentiment_for_the_call_log(call, ravi, sharma):
    c = call(ravi.phone)
    c.say("Dr Sharma kal 10 baje")
    c.say("haan")
    c.say("nahi, bas. Dhanyavaad")
    agent = c.last_agent
    appointment = only_appointment()
    assert agent.summary() == (
        f"Ravi Kumar: Booked Ravi Kumar with Dr. Priya Sharma for 16 Jan 2031, 10:00 AM"
        f" (appointment #{appointment.pk})."
    )
    assert agent.sentiment() == "positive"


def test_changing_the_doctor_while_asked_for_the_name_keeps_the_booking(call, sharma, gupta):
    c = call("+919812345671")
    c.say("book an appointment tomorrow at 10 am with Dr Sharma")
    reply = c.say("actually Dr Gupta")  # at the name question
    assert reply.expects == "name"
    assert not Patient.objects.filter(phone="+919812345671").exists()
    c.say("Neha Singh")
    reply = c.press("1")  # yes, the name is right
    assert reply.text.endswith(
        "Dr. Rajesh Gupta, tomorrow at 10 am, for Neha Singh. Shall I book it?"
    )


def test_booking_for_a_relative_asks_the_name_even_on_a_known_phone(call, ravi, sharma):
    c = call(ravi.phone)
    reply = c.say("mere bete ke liye Dr Sharma kal 10 baje appointment chahiye")
    assert reply.expects == "name"
    c.say("Arjun Kumar")
    c.say("haan")
    c.say("haan")
    assert only_appointment().patient.name == "Arjun Kumar"


def test_relative_already_on_the_phone_is_not_registered_twice(call, family, sharma):
    c = call(family[0].phone)
    c.say("book for my son with Dr Sharma tomorrow at 10 am")
    reply = c.say("Aarav")
    assert reply.text.startswith("Thank you, Aarav Kumar.")
    c.say("yes")
    assert only_appointment().patient == family[2]
    assert Patient.objects.filter(phone=family[0].phone).count() == 3


def test_a_goodbye_at_who_is_it_for_registers_nobody(call, family, sharma):
    # "That is all, thank you" once registered a patient called "All" and offered to book.
    c = call(family[0].phone)
    c.say("I want to book with Dr Sharma tomorrow at 10 am")
    reply = c.say("That is all thank you")
    assert Patient.objects.filter(phone=family[0].phone).count() == 3
    assert "Shall I book" not in reply.text
    assert reply.end_call


def test_a_new_family_member_sharing_the_surname_is_registered(call, family, sharma):
    c = call(family[0].phone)
    c.say("Dr Sharma kal 10 baje")
    reply = c.say("Arjun Kumar")  # at "who is it for?": not Rajesh, Sunita or Aarav Kumar
    assert reply.text.startswith("Maine naam Arjun Kumar suna.")
    reply = c.say("haan")
    assert reply.text.startswith("Dhanyavaad, Arjun Kumar ji.")
    c.say("haan")
    assert only_appointment().patient.name == "Arjun Kumar"
