from typing import List, Optional

from pydantic import BaseModel, Field


class Step(BaseModel):
    name: str = Field(..., description="Name of the step.")
    key: str = Field(..., description="Unique identifier for the step.")
    notes: Optional[str] = Field(None, description="Free-form notes.")


class Steps(BaseModel):
    """An ordered plan."""

    steps: List[Step] = Field(..., description="List of steps to add to the task plan.")
    explanation: str = Field(..., description="Explanation for the list of steps.")
    priority: int = 0


class PlanWithOwner(Steps):
    owner: str = Field(description="Who owns the plan.")


def create_task_plan(steps: Steps, owner_plan: Optional[PlanWithOwner] = None):
    """Creates a task plan for the current task.

    Args:
        steps: List of steps to add to the task plan.
        owner_plan: An optional plan with an owner.
    """
    return steps
