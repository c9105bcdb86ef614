"""ClinicTools: the agent's only door to the database, always through clinic.services."""

from datetime import date, time

import pytest

from clinic.models import Appointment, AppointmentStatus, Patient, ScheduleExceptionKind
from clinic.tests.factories import (
    AppointmentFactory,
    DoctorFactory,
    PatientFactory,
    ScheduleExceptionFactory,
)
from voice.agent import tools as t
from voice.agent.tools import ClinicTools, normalize_phone
from voice.tests.agent.conftest import CALL_SID, NOW, ist, utc

THU = date(2031, 1, 16)


@pytest.fixture
def tools(clinic, doctors, ravi):
    return ClinicTools(clinic, ravi.phone, call_sid=CALL_SID, now=NOW)


@pytest.mark.parametrize(
    "spoken", ["Sharma", "doctor sharma", "Dr. Sharma", "डॉ शर्मा", "Priya", "sharmaa ji"]
)
def test_find_doctors_by_spoken_name(tools, sharma, spoken):
    assert [d.id for d in tools.find_doctors(spoken)] == [sharma.pk]


def test_find_doctors_by_speciality_and_unknown(tools, gupta):
    assert [d.id for d in tools.find_doctors("heart")] == [gupta.pk]
    assert tools.find_doctors("Verma") == []


def test_exact_free_time(tools, sharma):
    search = tools.search_slots(sharma.pk, day=THU, at=time(10))
    assert search.exact_free and search.requested == utc(2031, 1, 16, 4, 30)


def test_free_time_off_the_grid_counts(tools, sharma):
    assert tools.search_slots(sharma.pk, day=THU, at=time(10, 15)).exact_free


def test_taken_time_gives_the_nearest_free_ones(tools, sharma, clinic):
    AppointmentFactory(clinic=clinic, doctor=sharma, scheduled_time=ist(16, 10))
    search = tools.search_slots(sharma.pk, day=THU, at=time(10))
    assert (search.exact_free, search.problem) == (False, t.TAKEN)
    assert search.slots == [utc(2031, 1, 16, 3, 30), utc(2031, 1, 16, 4, 0), utc(2031, 1, 16, 5, 0)]


def test_outside_hours_and_past(tools, sharma):
    assert tools.search_slots(sharma.pk, day=THU, at=time(20)).problem == t.OUTSIDE_HOURS
    assert tools.search_slots(sharma.pk, day=NOW.date(), at=time(8)).problem == t.PAST_TIME
    assert tools.search_slots(sharma.pk, day=date(2031, 1, 10)).problem == t.PAST_DAY


def test_leave_and_weekly_day_off(tools, sharma, clinic):
    ScheduleExceptionFactory(doctor=sharma, date=THU, kind=ScheduleExceptionKind.LEAVE)
    search = tools.search_slots(sharma.pk, day=THU, period="morning")
    assert search.problem == t.LEAVE
    assert search.slots[0] == utc(2031, 1, 17, 3, 30)  # Friday 9:00
    weekdays_only = DoctorFactory(
        clinic=clinic, working_hours={"monday": ["09:00-13:00"], "friday": ["09:00-13:00"]}
    )
    search = ClinicTools(clinic, "+919800000001", now=NOW).search_slots(
        weekdays_only.pk, day=THU, at=time(10)
    )
    assert search.problem == t.DAY_OFF
    assert search.slots[1] == utc(2031, 1, 17, 4, 30)  # nearest to 10:00 on Friday


def test_part_of_day_and_not_accepting(tools, sharma, clinic):
    search = tools.search_slots(sharma.pk, day=THU, period="evening")
    assert search.slots == [
        utc(2031, 1, 16, 10, 30),
        utc(2031, 1, 16, 11, 0),
        utc(2031, 1, 16, 11, 30),
    ]
    resting = DoctorFactory(clinic=clinic, available=False)
    fresh = ClinicTools(clinic, "+919800000001", now=NOW)  # doctors are cached per call
    assert fresh.search_slots(resting.pk, day=THU).problem == t.NOT_ACCEPTING


def test_slots_starting_within_the_lead_time_are_not_offered(tools, sharma):
    today = tools.search_slots(sharma.pk, day=NOW.date())
    assert today.slots[0] == utc(2031, 1, 15, 4, 0)  # 9:30, not 9:00 at 9:00


def test_book_goes_through_the_services(tools, ravi, sharma):
    result = tools.book(ravi.pk, sharma.pk, ist(16, 10), reason="Fever")
    assert result.ok
    appointment = Appointment.objects.get(pk=result.appointment.id)
    assert (appointment.source, appointment.call_sid, appointment.reason) == (
        "voice",
        CALL_SID,
        "Fever",
    )
    assert result.appointment.doctor_name == "Dr. Priya Sharma"


def test_booking_errors_become_problems_with_alternatives(tools, ravi, sharma, clinic):
    AppointmentFactory(clinic=clinic, doctor=sharma, scheduled_time=ist(16, 10))
    taken = tools.book(ravi.pk, sharma.pk, ist(16, 10))
    assert (taken.ok, taken.problem) == (False, t.TAKEN)
    assert taken.message == "Appointment time slot already booked"
    assert utc(2031, 1, 16, 4, 0) in taken.alternatives
    past = tools.book(ravi.pk, sharma.pk, ist(15, 8))
    assert past.problem == t.PAST_TIME
    late = tools.book(ravi.pk, sharma.pk, ist(16, 21))
    assert late.problem == t.OUTSIDE_HOURS and late.alternatives
    ScheduleExceptionFactory(doctor=sharma, date=date(2031, 1, 17), kind="holiday")
    holiday = tools.book(ravi.pk, sharma.pk, ist(17, 10))
    assert holiday.problem == t.HOLIDAY
    resting = DoctorFactory(clinic=clinic, available=False)
    refused = ClinicTools(clinic, ravi.phone, now=NOW).book(ravi.pk, resting.pk, ist(16, 10))
    assert refused.problem == t.NOT_ACCEPTING and refused.alternatives == []


def test_only_the_callers_own_records(tools, sharma, clinic):
    stranger = PatientFactory(clinic=clinic)
    theirs = AppointmentFactory(clinic=clinic, patient=stranger, scheduled_time=ist(16, 11))
    assert tools.book(stranger.pk, sharma.pk, ist(16, 10)).problem == t.NOT_FOUND
    assert tools.cancel(theirs.pk).problem == t.NOT_FOUND
    assert tools.reschedule(theirs.pk, ist(16, 12)).problem == t.NOT_FOUND
    theirs.refresh_from_db()
    assert theirs.status == AppointmentStatus.SCHEDULED


def test_cancel_and_reschedule_rules(tools, ravi, sharma, clinic):
    appointment = AppointmentFactory(
        clinic=clinic, patient=ravi, doctor=sharma, scheduled_time=ist(16, 10)
    )
    moved = tools.reschedule(appointment.pk, ist(16, 10, 30))  # overlaps its old self: fine
    assert moved.ok and moved.appointment.start == utc(2031, 1, 16, 5, 0)
    assert tools.cancel(appointment.pk).ok
    again = tools.reschedule(appointment.pk, ist(17, 10))
    assert again.problem == t.NOT_CHANGEABLE
    assert tools.upcoming_appointments() == []


def test_create_patient_and_same_name_again(tools, clinic):
    first = tools.create_patient("Meera Joshi", "hi")
    again = tools.create_patient("meera joshi", "en")
    assert first.id == again.id
    assert Patient.objects.filter(name__iexact="meera joshi").count() == 1


def test_set_language_only_for_own_patients(tools, ravi, clinic):
    stranger = PatientFactory(clinic=clinic, language_preference="hi")
    tools.set_language(ravi.pk, "en")
    tools.set_language(stranger.pk, "en")
    ravi.refresh_from_db()
    stranger.refresh_from_db()
    assert (ravi.language_preference, stranger.language_preference) == ("en", "hi")


def test_caller_numbers_are_normalised():
    assert normalize_phone("+919876500001") == "+919876500001"
    assert normalize_phone("09876500001") == "+919876500001"
    assert normalize_phone("9876500001") == "+919876500001"
    assert normalize_phone("anonymous") == "anonymous"


def test_clinic_info_and_transfer_number(tools, clinic):
    info = tools.clinic_info()
    assert info.hours == "Monday to Saturday, 9 am to 6 pm"
    assert info.fees == {"consultation": "500 rupees", "follow_up": "300 rupees"}
    assert info.facts == {"parking": "Free parking in the basement"}
    assert (info.open_days, info.opens, info.closes) == (list(range(7)), time(9), time(18))
    assert tools.transfer_number() == clinic.front_desk_phone


def test_lookups_stay_cheap(tools, sharma, django_assert_max_num_queries):
    tools.doctors()
    with django_assert_max_num_queries(3):  # the day's exception, bookings, exception again
        tools.search_slots(sharma.pk, day=THU, at=time(10))
