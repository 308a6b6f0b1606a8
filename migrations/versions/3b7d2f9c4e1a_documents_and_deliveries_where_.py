"""Documents and deliveries, where documents go, discharge checks, pending boards

Revision ID: 3b7d2f9c4e1a
Revises: 764e22aeded4
Create Date: 2026-12-01 19:24:32.992179

"""
from alembic import op
import sqlalchemy as sa

import kiosk.core.models


# revision identifiers, used by Alembic.
revision = '3b7d2f9c4e1a'
down_revision = '764e22aeded4'
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('source_uid', sa.String(length=36), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('pdf', sa.LargeBinary(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_try_at', kiosk.core.models.UTCDateTime(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('finalised_by_id', sa.Integer(), nullable=True),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('ready_at', kiosk.core.models.UTCDateTime(), nullable=True),
    sa.Column('uid', sa.String(length=36), nullable=False),
    sa.Column('created_at', kiosk.core.models.UTCDateTime(), nullable=False),
    sa.Column('updated_at', kiosk.core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_documents_device_id_devices')),
    sa.ForeignKeyConstraint(['finalised_by_id'], ['users.id'], name=op.f('fk_documents_finalised_by_id_users')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_documents_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_documents'))
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_documents_next_try_at'), ['next_try_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_source_uid'), ['source_uid'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_documents_uid'), ['uid'], unique=True)

    op.create_table('document_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=12), nullable=False),
    sa.Column('target', sa.String(length=500), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_try_at', kiosk.core.models.UTCDateTime(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('sent_at', kiosk.core.models.UTCDateTime(), nullable=True),
    sa.Column('created_at', kiosk.core.models.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_document_deliveries_document_id_documents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_deliveries')),
    sa.UniqueConstraint('document_id', 'channel', name=op.f('uq_document_deliveries_document_id'))
    )
    with op.batch_alter_table('document_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_deliveries_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_deliveries_status'), ['status'], unique=False)

    with op.batch_alter_table('boards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('filter', sa.String(length=20), nullable=True))

    with op.batch_alter_table('clinic_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('documents_folder', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('documents_email', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('documents_connector', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('documents_merge_at_discharge', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outbox_patients', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('outbox_discharges', sa.JSON(), nullable=False, server_default='[]'))

    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discharged_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('discharge_override', sa.String(length=500), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_patients_discharged_by_id_users'), 'users', ['discharged_by_id'], ['id'])




def downgrade():

    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_patients_discharged_by_id_users'), type_='foreignkey')
        batch_op.drop_column('discharge_override')
        batch_op.drop_column('discharged_by_id')

    with op.batch_alter_table('devices', schema=None) as batch_op:
        batch_op.drop_column('outbox_discharges')
        batch_op.drop_column('outbox_patients')

    with op.batch_alter_table('clinic_settings', schema=None) as batch_op:
        batch_op.drop_column('documents_merge_at_discharge')
        batch_op.drop_column('documents_connector')
        batch_op.drop_column('documents_email')
        batch_op.drop_column('documents_folder')

    with op.batch_alter_table('boards', schema=None) as batch_op:
        batch_op.drop_column('filter')

    with op.batch_alter_table('document_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_deliveries_status'))
        batch_op.drop_index(batch_op.f('ix_document_deliveries_document_id'))

    op.drop_table('document_deliveries')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_uid'))
        batch_op.drop_index(batch_op.f('ix_documents_status'))
        batch_op.drop_index(batch_op.f('ix_documents_source_uid'))
        batch_op.drop_index(batch_op.f('ix_documents_patient_id'))
        batch_op.drop_index(batch_op.f('ix_documents_next_try_at'))

    op.drop_table('documents')

