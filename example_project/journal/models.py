"""The EpicMe journal: entries and tags, each owned by one user."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

TITLE_MAX_LENGTH = 200
TAG_NAME_MAX_LENGTH = 50
MOOD_MAX_LENGTH = 50
LOCATION_MAX_LENGTH = 200


class Tag(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="journal_tags",
        verbose_name=_("owner"),
    )
    name = models.CharField(_("name"), max_length=TAG_NAME_MAX_LENGTH)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                "owner",
                Lower("name"),
                name="journal_tag_owner_name_ci_unique",
                violation_error_message=_("You already have a tag with this name."),
            )
        ]

    def __str__(self) -> str:
        return self.name


class Entry(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="journal_entries",
        verbose_name=_("owner"),
    )
    title = models.CharField(_("title"), max_length=TITLE_MAX_LENGTH)
    content = models.TextField(_("content"))
    mood = models.CharField(_("mood"), max_length=MOOD_MAX_LENGTH, blank=True)
    location = models.CharField(_("location"), max_length=LOCATION_MAX_LENGTH, blank=True)
    is_private = models.BooleanField(_("private"), default=True)
    is_favorite = models.BooleanField(_("favorite"), default=False)
    tags = models.ManyToManyField(Tag, blank=True, related_name="entries", verbose_name=_("tags"))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("entry")
        verbose_name_plural = _("entries")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="journal_entry_owner_created")]

    def __str__(self) -> str:
        return self.title
