"""Postmortem rules: drafted on resolve when required, sections and action items, completion,
and the corrective action a reopened incident needs before it can close again."""
from __future__ import annotations

from .commands import AddActionItem, CompletePostmortem, EditPostmortem, UpdateActionItem
from .decisions import Context, NotFound, Rejected
from .events import ActionItemAdded, ActionItemUpdated, PostmortemCompleted, PostmortemCreated, PostmortemEdited, _Event
from .incident import ActionItem, Incident, Postmortem


def on_resolve(state: Incident, ctx: Context) -> list[_Event]:
    policy = ctx.org.postmortem
    if state.postmortem is not None or state.severity not in policy.required_severities:
        return []
    return [PostmortemCreated(actor="system", at=ctx.now, postmortem=draft(state, ctx, required=True, resolving=True))]


def draft(state: Incident, ctx: Context, required: bool, resolving: bool = False) -> Postmortem:
    timeline = [f"{m.at:%Y-%m-%d %H:%M:%S}Z {m.summary}" for m in state.milestones]
    if resolving:  # the Resolved event of this same decision is not a milestone yet
        timeline.append(f"{ctx.now:%Y-%m-%d %H:%M:%S}Z resolved")
    return Postmortem(
        required=required,
        owner=state.commander,
        created_at=ctx.now,
        due_at=ctx.now + ctx.org.postmortem.due_after_for(state.team),
        timeline=timeline,
        impact=state.impact,
    )


def has_new_corrective_action(state: Incident) -> bool:
    if state.postmortem is None:
        return False
    return any(item.reopen_generation == state.reopen_count for item in state.postmortem.action_items)


def ensure(state: Incident, ctx: Context) -> list[_Event]:
    if state.postmortem is not None:
        return []
    required = state.severity in ctx.org.postmortem.required_severities or state.reopen_count > 0
    return [PostmortemCreated(actor=ctx.actor, at=ctx.now, postmortem=draft(state, ctx, required=required))]


def edit(state: Incident, command: EditPostmortem, ctx: Context) -> list[_Event]:
    fields = command.model_dump(exclude={"kind"}, exclude_none=True)
    if not fields:
        raise Rejected("nothing to change: give at least one postmortem field")
    return [*ensure(state, ctx), PostmortemEdited(actor=ctx.actor, at=ctx.now, fields=fields)]


def add_action_item(state: Incident, command: AddActionItem, ctx: Context) -> list[_Event]:
    created = ensure(state, ctx)
    existing = len(state.postmortem.action_items) if state.postmortem is not None else 0
    item = ActionItem(
        item_id=f"AI-{existing + 1}",
        title=command.title,
        owner=command.owner,
        due_date=command.due_date,
        priority=command.priority,
        created_at=ctx.now,
        created_by=ctx.actor,
        reopen_generation=state.reopen_count,
    )
    return [*created, ActionItemAdded(actor=ctx.actor, at=ctx.now, item=item)]


def update_action_item(state: Incident, command: UpdateActionItem, ctx: Context) -> list[_Event]:
    items = state.postmortem.action_items if state.postmortem is not None else []
    current = next((item for item in items if item.item_id == command.item_id), None)
    if current is None:
        raise NotFound(f"no action item {command.item_id}")
    fields = command.model_dump(exclude={"kind", "item_id"}, exclude_none=True)
    if not fields:
        raise Rejected("nothing to change: give at least one action item field")
    return [ActionItemUpdated(actor=ctx.actor, at=ctx.now, item=current.model_copy(update=fields))]


def complete(state: Incident, command: CompletePostmortem, ctx: Context) -> list[_Event]:
    postmortem = state.postmortem
    if postmortem is None:
        raise Rejected("there is no postmortem to complete")
    if postmortem.status == "completed":
        raise Rejected("the postmortem is already completed")
    if state.status.is_open:
        raise Rejected("resolve the incident before completing its postmortem")
    missing = [name for name in ctx.org.postmortem.required_sections if not getattr(postmortem, name).strip()]
    if missing:
        raise Rejected(f"the postmortem needs these sections before it can be completed: {', '.join(missing)}")
    if not postmortem.action_items:
        raise Rejected("the postmortem needs at least one action item before it can be completed")
    return [PostmortemCompleted(actor=ctx.actor, at=ctx.now)]
