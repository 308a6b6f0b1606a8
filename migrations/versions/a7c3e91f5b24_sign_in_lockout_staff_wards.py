"""Sign-in lockout per user and per tablet; PIN length; the wards each person works on

Revision ID: a7c3e91f5b24
Revises: a7c3e9d15f02
Create Date: 2026-12-02 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import kiosk.core.models


# revision identifiers, used by Alembic.
revision = 'a7c3e91f5b24'
down_revision = 'a7c3e9d15f02'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pin_length', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sign_in_failures', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('locked_until', kiosk.core.models.UTCDateTime(),
                                      nullable=True))

    op.create_table('users_wards',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('ward_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_users_wards_user_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ward_id'], ['wards.id'], name=op.f('fk_users_wards_ward_id_wards'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'ward_id', name=op.f('pk_users_wards'))
    )
    # Nothing changes on upgrade: everyone works on every ward until a manager says not.
    op.execute("INSERT INTO users_wards (user_id, ward_id) "
               "SELECT users.id, wards.id FROM users CROSS JOIN wards")

    # The old count was per user and address; the per-user count now lives on the user,
    # and this table counts wrong PINs per tablet. Old counts are dropped (they expire in
    # ten minutes anyway).
    op.drop_table('pin_failures')
    op.create_table('pin_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('place', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', kiosk.core.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pin_failures')),
    sa.UniqueConstraint('place', name=op.f('uq_pin_failures_place'))
    )


def downgrade():
    op.drop_table('pin_failures')
    op.create_table('pin_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('place', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', kiosk.core.models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_pin_failures_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pin_failures')),
    sa.UniqueConstraint('user_id', 'place', name=op.f('uq_pin_failures_user_id'))
    )
    op.drop_table('users_wards')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('sign_in_failures')
        batch_op.drop_column('pin_length')
