"""Imports every feature's tables so metadata (and Alembic) knows them all."""

from .anaesthesia.models import AnaesthesiaEntry, AnaesthesiaSheet
from .billing.models import BillingConnector, BillingItem, Charge, ShiftMark
from .clinic.models import ClinicSettings, Ward
from .core.audit import AuditEntry
from .devices.models import Device, DeviceEvent, DevicePatient, SyncOp
from .documents.models import Document, DocumentDelivery
from .flows.models import Flow, FlowEvent, FlowRun, FlowStep, FlowTemplate, FlowVersion
from .forms.models import FormEntry, FormTemplate, FormVersion, PatientForm
from .inbox.models import StaffMessage, StaffMessageRead, StaffTask
from .maintenance.models import MaintenanceWindow, Outage
from .messaging.models import ClientMessage
from .owners.models import Owner
from .patients.models import Patient
from .staff.models import PinFailure, StaffSession, User
from .status.models import IncidentNote, StatusDelivery, StatusNotice, StatusSubscription
from .treatments.models import Note, Order, Task, TaskCompletion
from .whiteboards.models import Board, BoardMember

__all__ = ["AnaesthesiaEntry", "AnaesthesiaSheet", "AuditEntry", "BillingConnector",
           "BillingItem", "Board", "BoardMember", "Charge", "ClientMessage", "Flow", "FlowEvent",
           "FlowRun", "FlowStep", "FlowTemplate", "FlowVersion", "MaintenanceWindow", "Outage",
           "ShiftMark", "IncidentNote", "StatusDelivery", "StatusNotice", "StatusSubscription",
           "ClinicSettings", "Device", "DeviceEvent", "DevicePatient", "Document",
           "DocumentDelivery", "FormEntry", "FormTemplate", "FormVersion", "Note", "Order",
           "Owner", "Patient", "PatientForm", "PinFailure", "StaffMessage",
           "StaffMessageRead", "StaffSession", "StaffTask", "SyncOp", "Task",
           "TaskCompletion", "User", "Ward"]
