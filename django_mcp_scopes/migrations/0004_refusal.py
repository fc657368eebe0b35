from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mcp_scopes', '0003_implication'),
    ]

    operations = [
        migrations.CreateModel(
            name='Refusal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(db_index=True, verbose_name='time')),
                ('kind', models.CharField(choices=[('invalid_request', 'malformed credentials (401/400)'), ('invalid_token', 'invalid token (401)'), ('insufficient_scope', 'insufficient scope (403)'), ('inactive_scope', 'scope held but inactive (403)'), ('rate_limited', 'rate limited (429)')], max_length=32, verbose_name='kind')),
                ('reason', models.CharField(blank=True, help_text="The refusal's code, e.g. expired or wrong_resource.", max_length=64, verbose_name='reason')),
                ('operation', models.CharField(blank=True, help_text='"tools/call add_entry" or "POST /api/entries".', max_length=255, verbose_name='operation')),
                ('endpoint', models.CharField(blank=True, help_text="The request's path.", max_length=255, verbose_name='endpoint')),
                ('client_id', models.CharField(blank=True, max_length=255, verbose_name='client id')),
                ('missing_scopes', models.CharField(blank=True, help_text='Space-separated, as in the challenge.', max_length=1000, verbose_name='scopes missing')),
            ],
            options={
                'verbose_name': 'refusal',
                'verbose_name_plural': 'refusals',
                'ordering': ['-created_at', '-id'],
            },
        ),
    ]
