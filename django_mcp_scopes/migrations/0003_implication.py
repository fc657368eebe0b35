# Names the hierarchy's through model (Implication) without touching the database: the table,
# its columns, indexes and unique constraint are the ones Django created for Scope.implies in
# 0001_initial, and every existing implication stays.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mcp_scopes', '0002_epochs'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Implication',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('from_scope', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='mcp_scopes.scope', verbose_name='broader scope')),
                        ('to_scope', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='mcp_scopes.scope', verbose_name='implied scope')),
                    ],
                    options={
                        'verbose_name': 'implication',
                        'verbose_name_plural': 'implications',
                        'db_table': 'mcp_scopes_scope_implies',
                        'unique_together': {('from_scope', 'to_scope')},
                    },
                ),
                migrations.AlterField(
                    model_name='scope',
                    name='implies',
                    field=models.ManyToManyField(blank=True, help_text='Narrower scopes that this scope grants too.', related_name='implied_by', through='mcp_scopes.Implication', through_fields=('from_scope', 'to_scope'), to='mcp_scopes.scope', verbose_name='implies'),
                ),
            ],
        ),
    ]
