from django.apps import AppConfig


class JournalConfig(AppConfig):
    name = "example_project.journal"
    label = "journal"
    verbose_name = "Journal"
    default_auto_field = "django.db.models.BigAutoField"
