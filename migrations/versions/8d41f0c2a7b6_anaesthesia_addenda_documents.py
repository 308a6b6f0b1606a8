"""Anaesthesia addenda are archived as documents of their own

Revision ID: 8d41f0c2a7b6
Revises: 5c8e1a2b9d30
Create Date: 2026-12-01 22:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8d41f0c2a7b6'
down_revision = '5c8e1a2b9d30'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('anaesthesia_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('document_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_anaesthesia_entries_document_id_documents'),
                                    'documents', ['document_id'], ['id'])


def downgrade():
    with op.batch_alter_table('anaesthesia_entries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_anaesthesia_entries_document_id_documents'),
                                 type_='foreignkey')
        batch_op.drop_column('document_id')
