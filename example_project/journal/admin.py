from django.contrib import admin

from example_project.journal.models import Entry, Tag


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "mood", "is_favorite", "is_private", "created_at"]
    list_filter = ["is_favorite", "is_private", "created_at"]
    search_fields = ["title", "content", "owner__username"]
    filter_horizontal = ["tags"]
    raw_id_fields = ["owner"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at"]
    search_fields = ["name", "description", "owner__username"]
    raw_id_fields = ["owner"]
