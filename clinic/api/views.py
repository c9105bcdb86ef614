"""``/api/v1/appointments``, ``/patients``, ``/doctors`` (§4-§6). Thin: parse, call a
service or selector, shape the answer."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action

from accounts.models import Role
from audit.models import AuditAction
from clinic import schedule, selectors, services
from clinic.api import serializers as s
from clinic.models import Appointment, BookingSource, Doctor, Patient
from vaani.common.exceptions import NotFoundError
from vaani.common.responses import ApiResponse
from vaani.common.views import ClinicScopedViewSet

_PK_PARAM_NOTE = "Another clinic's object answers 404 NOT_FOUND."


def _query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _body(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class AppointmentViewSet(ClinicScopedViewSet):
    queryset = Appointment.objects.select_related("patient", "doctor")
    resource_name = "appointment"
    list_key = "appointments"
    audit_resource = "appointment"

    @extend_schema(
        parameters=[s.AppointmentListQuerySerializer], responses=s.AppointmentSerializer(many=True)
    )
    def list(self, request):
        filters = _query(s.AppointmentListQuerySerializer, request)
        rows = selectors.appointment_rows(
            clinic=self.clinic, columns=s.AppointmentSerializer.COLUMNS, **filters
        )
        page = self.paginate_rows(rows, counted=rows)
        self.audit(AuditAction.LIST, [row["id"] for row in page])
        return self.get_paginated_response(s.AppointmentSerializer(page, many=True).data)

    @extend_schema(responses=s.AppointmentDetailSerializer, description=_PK_PARAM_NOTE)
    def retrieve(self, request, pk=None):
        appointment = self.get_object()
        self.audit(AuditAction.READ, appointment.pk)
        return ApiResponse(s.AppointmentDetailSerializer(appointment).data)

    @extend_schema(
        request=s.AppointmentCreateSerializer,
        responses={201: s.AppointmentSerializer},
        description="Books a slot. 409 CONFLICT names the conflicting appointment.",
    )
    def create(self, request):
        data = _body(s.AppointmentCreateSerializer, request)
        appointment = services.book_appointment(
            clinic=self.clinic, source=BookingSource.API, booked_by=request.user, **data
        )
        self.audit(AuditAction.CREATE, appointment.pk)
        return ApiResponse(
            s.AppointmentSerializer(appointment).data,
            status=201,
            message="Appointment created successfully. SMS confirmation sent.",
        )

    @extend_schema(request=s.AppointmentUpdateSerializer, responses=s.AppointmentSerializer)
    def update(self, request, pk=None, partial=True):
        appointment = self.get_object()
        changes = _body(s.AppointmentUpdateSerializer, request)
        appointment = services.update_appointment(
            appointment=appointment, changes=changes, updated_by=request.user
        )
        self.audit(AuditAction.UPDATE, appointment.pk)
        return ApiResponse(
            s.AppointmentSerializer(appointment).data,
            message="Appointment updated. SMS notification sent to patient.",
        )

    @extend_schema(request=s.AppointmentUpdateSerializer, responses=s.AppointmentSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk)

    @extend_schema(
        parameters=[s.CancelQuerySerializer],
        responses={200: OpenApiResponse(description="Cancelled")},
    )
    def destroy(self, request, pk=None):
        appointment = self.get_object()
        reason = _query(s.CancelQuerySerializer, request)["reason"]
        already = appointment.status == "cancelled"
        services.cancel_appointment(
            appointment=appointment, reason=reason, cancelled_by=request.user
        )
        self.audit(AuditAction.CANCEL, appointment.pk)
        if already:
            return ApiResponse(message="Appointment was already cancelled.")
        return ApiResponse(message="Appointment cancelled successfully. SMS notification sent.")

    @extend_schema(
        parameters=[s.AvailableSlotsQuerySerializer], responses=s.AvailableSlotsSerializer
    )
    @action(detail=False, methods=["get"], url_path="available-slots")
    def available_slots(self, request):
        query = _query(s.AvailableSlotsQuerySerializer, request)
        doctor = services.get_doctor(clinic=self.clinic, doctor_id=query["doctor_id"])
        slots = services.available_slots(
            doctor=doctor, day=query["date"], duration_minutes=query["duration_minutes"]
        )
        data = {
            "doctor_id": doctor.pk,
            "doctor_name": doctor.name,
            "date": query["date"],
            "duration_minutes": query["duration_minutes"],
            "available_slots": [{"start_time": slot.start, "end_time": slot.end} for slot in slots],
            "total_slots": len(slots),
        }
        return ApiResponse(s.AvailableSlotsSerializer(data).data)


class PatientViewSet(ClinicScopedViewSet):
    queryset = Patient.objects.all()
    resource_name = "patient"
    list_key = "patients"
    audit_resource = "patient"

    def _context(self):
        return {"today": timezone.localdate(timezone=self.clinic.tzinfo)}

    @extend_schema(
        parameters=[s.PatientListQuerySerializer], responses=s.PatientSerializer(many=True)
    )
    def list(self, request):
        query = _query(s.PatientListQuerySerializer, request)
        patients = selectors.patient_list(
            clinic=self.clinic,
            search=query.get("search", ""),
            language=query.get("language_preference"),
            phone=query.get("phone"),
        )
        page = self.paginate_queryset(patients)
        self.audit(AuditAction.LIST, [p.pk for p in page])
        data = s.PatientSerializer(page, many=True, context=self._context()).data
        return self.get_paginated_response(data)

    @extend_schema(responses=s.PatientDetailSerializer, description=_PK_PARAM_NOTE)
    def retrieve(self, request, pk=None):
        patient = selectors.patient_detail(clinic=self.clinic, patient_id=int(pk))
        if patient is None:
            raise NotFoundError("patient", int(pk))
        self.audit(AuditAction.READ, patient.pk)
        context = {
            **self._context(),
            "history": selectors.patient_history(
                patient, columns=s.PatientHistoryItemSerializer.COLUMNS
            ),
        }
        return ApiResponse(s.PatientDetailSerializer(patient, context=context).data)

    @extend_schema(request=s.PatientCreateSerializer, responses={201: s.PatientSerializer})
    def create(self, request):
        data = _body(s.PatientCreateSerializer, request)
        patient = services.create_patient(clinic=self.clinic, **data)
        self.audit(AuditAction.CREATE, patient.pk)
        return ApiResponse(
            s.PatientSerializer(patient, context=self._context()).data,
            status=201,
            message="Patient created",
        )

    @extend_schema(request=s.PatientUpdateSerializer, responses=s.PatientSerializer)
    def update(self, request, pk=None):
        patient = self.get_object()
        changes = _body(s.PatientUpdateSerializer, request)
        patient = services.update_patient(patient=patient, changes=changes)
        self.audit(AuditAction.UPDATE, patient.pk)
        fresh = selectors.patient_detail(clinic=self.clinic, patient_id=patient.pk)
        return ApiResponse(
            s.PatientSerializer(fresh, context=self._context()).data, message="Patient updated"
        )

    @extend_schema(request=s.PatientUpdateSerializer, responses=s.PatientSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk)


class DoctorViewSet(ClinicScopedViewSet):
    queryset = Doctor.objects.all()  # get_object() attaches the caller's clinic
    resource_name = "doctor"
    list_key = "doctors"
    write_roles = Role.MANAGERS

    @extend_schema(
        parameters=[s.DoctorListQuerySerializer], responses=s.DoctorSerializer(many=True)
    )
    def list(self, request):
        query = _query(s.DoctorListQuerySerializer, request)
        doctors = selectors.doctor_list(
            clinic=self.clinic,
            specialization=query.get("specialization"),
            available=query.get("available"),
        )
        page = self.paginate_queryset(doctors)
        return self.get_paginated_response(s.DoctorSerializer(page, many=True).data)

    @extend_schema(responses=s.DoctorSerializer, description=_PK_PARAM_NOTE)
    def retrieve(self, request, pk=None):
        return ApiResponse(s.DoctorSerializer(self.get_object()).data)

    @extend_schema(request=s.DoctorCreateSerializer, responses={201: s.DoctorSerializer})
    def create(self, request):
        doctor = services.create_doctor(
            clinic=self.clinic, **_body(s.DoctorCreateSerializer, request)
        )
        return ApiResponse(s.DoctorSerializer(doctor).data, status=201, message="Doctor created")

    @extend_schema(request=s.DoctorUpdateSerializer, responses=s.DoctorSerializer)
    def update(self, request, pk=None):
        doctor = self.get_object()
        doctor = services.update_doctor(
            doctor=doctor, changes=_body(s.DoctorUpdateSerializer, request)
        )
        return ApiResponse(s.DoctorSerializer(doctor).data, message="Doctor updated")

    @extend_schema(request=s.DoctorUpdateSerializer, responses=s.DoctorSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk)

    @extend_schema(parameters=[s.ScheduleQuerySerializer], responses=s.DoctorScheduleSerializer)
    @action(detail=True, methods=["get"])
    def schedule(self, request, pk=None):
        """§6.2: a day (``date``, default today) or its Monday-to-Sunday week (``week``)."""
        # The scoped lookup of get_object(), compiled once (404 NOT_FOUND alike).
        doctor = services.get_doctor(clinic=self.clinic, doctor_id=int(pk))
        query = _query(s.ScheduleQuerySerializer, request)
        tz = doctor.clinic.tzinfo
        day = query.get("date") or timezone.localdate(timezone=tz)
        if query["week"]:
            week_start = day - timedelta(days=day.weekday())
            days = selectors.doctor_schedule(doctor=doctor, first_day=week_start, days=7)
        else:
            days = selectors.doctor_schedule(doctor=doctor, first_day=day, days=1)
        shaped = [_day_shape(doctor, d, tz) for d in days]
        data = {
            "doctor_id": doctor.pk,
            "doctor_name": doctor.name,
            "time_zone": doctor.clinic.time_zone,
            **(shaped[0] if not query["week"] else {}),
        }
        if query["week"]:
            data.update(
                date=day,
                week_start=days[0].date,
                week_end=days[-1].date,
                days=shaped,
                appointments=[a for d in shaped for a in d["appointments"]],
                working_hours=[],
                day_off=None,
                total_appointments=sum(d["total_appointments"] for d in shaped),
                available_slots=sum(d["available_slots"] for d in shaped),
            )
        return ApiResponse(s.DoctorScheduleSerializer(data).data)


def _day_shape(doctor: Doctor, day: selectors.DaySchedule, tz) -> dict:
    exception = day.exception
    if exception is None:
        hours = doctor.working_hours_display()[schedule.WEEKDAYS[day.date.weekday()]]
    else:
        hours = list(exception.hours) if exception.kind == "changed_hours" else []
    return {
        "date": day.date,
        "working_hours": hours,
        "day_off": exception.get_kind_display() if exception and not hours else None,
        "appointments": [
            {
                "id": a.id,
                "patient_id": a.patient_id,
                "patient_name": a.patient_name,
                "start_time": _clock(a.scheduled_time, tz),
                "end_time": _clock(a.end_time, tz),
                "status": a.status,
                "reason": a.reason,
            }
            for a in day.appointments
        ],
        "total_appointments": len(day.appointments),
        "available_slots": day.available_slots,
    }


def _clock(instant, tz) -> str:
    """``HH:MM`` local: a busy week formats ~140 of these, and strftime was a tenth of it."""
    local = instant.astimezone(tz)
    return f"{local.hour:02d}:{local.minute:02d}"
