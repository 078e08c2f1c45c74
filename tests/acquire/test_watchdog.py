"""The stall watchdog against the orders in which pycromanager's two threads (notification
dispatcher, image processor) can report an event: real ``AcqNotification`` objects, a settable
clock. The first case is the race that left a run with a failed camera waiting for ever: the
image of frame 2 reached the hook after frame 3's camera step was announced, and cleared it."""

from __future__ import annotations

from pycromanager.acquisition.acq_eng_py.main.acq_notification import AcqNotification

from smartscope.acquire.supervise import Watchdog

TIMEOUT_S = 3.0


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def frame(t: int, position: int = 0) -> dict:
    return {"time": t, "position": position}


def hardware(axes: dict, milestone: str = AcqNotification.Hardware.PRE_HARDWARE) -> AcqNotification:
    return AcqNotification(AcqNotification.Hardware, axes, milestone)


def camera(axes: dict, milestone: str = AcqNotification.Camera.PRE_SNAP) -> AcqNotification:
    return AcqNotification(AcqNotification.Camera, axes, milestone)


def announce(dog: Watchdog, axes: dict) -> None:
    """What the engine posts for one snapped frame before its image exists."""
    dog(hardware(axes))
    dog(hardware(axes, AcqNotification.Hardware.POST_HARDWARE))
    dog(camera(axes))


def watchdog() -> tuple[Watchdog, Clock]:
    clock = Clock()
    return Watchdog(TIMEOUT_S, clock=clock), clock


def test_a_late_image_of_the_previous_frame_does_not_hide_a_camera_that_failed():
    dog, clock = watchdog()
    announce(dog, frame(1))
    dog.arrived(frame(1))
    announce(dog, frame(2))
    announce(dog, frame(3))  # the camera fails here: no image 3, no more notifications
    dog.arrived(frame(2))  # the processor was behind: image 2 arrives after frame 3's snap began
    clock.t = TIMEOUT_S + 0.1
    why = dog.stalled()
    assert why is not None and "camera did not deliver" in why and "'time': 3" in why


def test_a_processor_behind_the_engine_is_not_a_stall():
    dog, clock = watchdog()
    for t in range(5):  # the engine announces five frames while the hook is still on the first
        clock.t = t * 2.0
        announce(dog, frame(t))
    for t in range(5):
        clock.t = 10.0 + t
        dog.arrived(frame(t))
    clock.t = 1000.0
    assert dog.stalled() is None


def test_the_wait_counts_from_the_oldest_frame_still_missing():
    dog, clock = watchdog()
    announce(dog, frame(0))
    clock.t = 2.0
    announce(dog, frame(1))
    dog.arrived(frame(0))
    clock.t = 4.0  # 4 s after frame 0 but 2 s after frame 1: frame 1 is not late yet
    assert dog.stalled() is None
    clock.t = 5.1
    assert "'time': 1" in (dog.stalled() or "")


def test_an_event_without_an_image_is_cleared_by_a_later_image():
    dog, clock = watchdog()
    dog(hardware({"time": 0, "move": 1}))  # a stage move only: no image will follow
    dog(hardware({"time": 0, "move": 1}, AcqNotification.Hardware.POST_HARDWARE))
    announce(dog, frame(1))
    dog.arrived(frame(1))
    clock.t = 100.0
    assert dog.stalled() is None


def test_a_notification_dispatched_after_its_image_is_not_waited_for():
    dog, clock = watchdog()
    dog.arrived(frame(0))  # the dispatcher was behind: the image came first
    announce(dog, frame(0))
    clock.t = 100.0
    assert dog.stalled() is None


def test_images_of_a_hardware_sequence_clear_it():
    dog, clock = watchdog()
    merged = frame(0)
    dog(hardware(merged))
    dog(camera(merged, AcqNotification.Camera.PRE_SEQUENCE_STARTED))
    dog.arrived({"time": 0, "position": 0, "z": 0})  # sub-events carry their own axes
    clock.t = 100.0
    assert dog.stalled() is None


def test_saved_notifications_count_as_delivery_and_stuck_hardware_is_named():
    dog, clock = watchdog()
    announce(dog, frame(0))
    dog(AcqNotification.create_image_saved_notification(frame(0)))
    dog(hardware(frame(1)))  # the objective never reaches its position
    clock.t = TIMEOUT_S + 1
    why = dog.stalled()
    assert why is not None and "did not reach its position" in why and "'time': 1" in why


def test_waiting_for_the_next_time_point_and_the_end_are_not_stalls():
    dog, clock = watchdog()
    announce(dog, frame(0))
    dog.arrived(frame(0))
    clock.t = 600.0  # the next time point is ten minutes away: nothing announced meanwhile
    assert dog.stalled() is None
    announce(dog, frame(1))
    dog(AcqNotification.create_acq_events_finished_notification())
    clock.t = 1000.0
    assert dog.stalled() is None


def test_an_image_without_axes_clears_everything():
    dog, clock = watchdog()
    announce(dog, frame(0))
    announce(dog, frame(1))
    dog.arrived(None)
    clock.t = 100.0
    assert dog.stalled() is None


def test_a_step_announced_without_axes_is_cleared_by_the_next_image():
    dog, clock = watchdog()
    dog(AcqNotification(AcqNotification.Camera, None, AcqNotification.Camera.PRE_SNAP))
    clock.t = TIMEOUT_S + 1
    assert dog.stalled() is not None
    dog.arrived(frame(0))
    assert dog.stalled() is None
