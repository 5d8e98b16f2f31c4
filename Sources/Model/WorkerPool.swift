import CPartJob
import Foundation
import Synchronization

/// Worker threads that run one job's parts at once, started once and then reused. Between jobs a
/// worker first polls for the next one for a short while (`spinIterations`, tens of
/// microseconds), then sleeps on a condition variable; the caller polls the same way for the
/// workers to finish. A step runs thousands of short jobs, and waking a sleeping thread took long
/// enough (the futex wake-up and the scheduler, slower still in a virtual machine) that on two
/// cores a second thread added only 30% to phase-I images/s. Handing out a job allocates nothing: the workers call
/// the caller's non-escaping closure itself through its two words (`CPartJob`), where
/// `withoutActuallyEscaping` would box it on the heap at every call (and Dispatch's
/// `concurrentPerform`, used before, made about five allocations per call).
///
/// `run(parts, body)` runs `body(0)` on the calling thread and `body(1..<parts)` on workers, and
/// returns when all have finished. A call made while another job runs (from inside a part, or
/// from a second thread) runs its parts one after another on its own thread.
final class WorkerPool: @unchecked Sendable {
    // Everything below but `busy` is written only under `mutex`; `generation` and `pending` are
    // atomics so that the polling loops may also read them without it.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var workers = 0
    /// Counts the jobs handed out; a worker takes part in each new one whose `parts` include it.
    private let generation = Atomic<Int>(0)
    private var parts = 0
    /// Workers still running the current job.
    private let pending = Atomic<Int>(0)
    /// The current job's closure, on the stack of the thread in `run`; unset between jobs.
    private var job = disttrain_part_job()
    private let busy = Atomic<Bool>(false)
    /// Polls before sleeping: about 20-50 microseconds of atomic loads.
    static let spinIterations = 20_000

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(finished, nil)
    }

    /// Whether a job is running: a kernel called from inside one runs on its own thread.
    var isRunning: Bool { busy.load(ordering: .relaxed) }

    /// Runs `body(part)` for every `part` in `0..<parts` at once.
    func run(_ parts: Int, _ body: (Int) -> Void) {
        if parts > 1 && handIfIdle(parts, body) { return }
        for part in 0..<parts { body(part) }
    }

    /// Like `run`, for parts that wait for each other (`MSDNet`'s image shards): they need threads
    /// of their own at once, so a call while another job runs stops the process with the reason
    /// instead of running them one after another, which would wait forever.
    func runTogether(_ parts: Int, _ body: (Int) -> Void) {
        guard parts > 1 else {
            body(0)
            return
        }
        guard handIfIdle(parts, body) else {
            preconditionFailure("\(parts) parts that wait for each other were started while the compute threads run another job")
        }
    }

    /// Runs the job on the workers if no other job runs; false (nothing run) if one does.
    private func handIfIdle(_ parts: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        hand(parts, body)
        busy.store(false, ordering: .releasing)
        return true
    }

    /// Gives parts 1... of `body` to the workers, runs part 0 and waits for the others. The
    /// workers may call `body` although it does not escape: this call returns only after every
    /// worker has finished its part (`pending` 0), while `body` and its captures are alive.
    private func hand(_ parts: Int, _ body: (Int) -> Void) {
        pthread_mutex_lock(mutex)
        while workers < parts - 1 {
            workers += 1
            startWorker(part: workers, generation: generation.load(ordering: .relaxed))
        }
        job = partJob(body)
        self.parts = parts
        pending.store(parts - 1, ordering: .relaxed)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        body(0)
        var spins = 0
        while pending.load(ordering: .acquiring) > 0 && spins < Self.spinIterations { spins += 1 }
        pthread_mutex_lock(mutex)
        while pending.load(ordering: .acquiring) > 0 { pthread_cond_wait(finished, mutex) }
        job = disttrain_part_job()
        pthread_mutex_unlock(mutex)
    }

    /// A worker for part `part` of every job after `generation`.
    private func startWorker(part: Int, generation: Int) {
        let thread = Thread { [unowned self] in self.work(part: part, after: generation) }
        thread.start()
    }

    private func work(part: Int, after startGeneration: Int) -> Never {
        var seen = startGeneration
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < Self.spinIterations { spins += 1 }
            pthread_mutex_lock(mutex)
            while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, mutex) }
            seen = generation.load(ordering: .acquiring)
            guard part < parts else {
                pthread_mutex_unlock(mutex)
                continue
            }
            pthread_mutex_unlock(mutex)
            disttrain_part_job_run(job, part)
            pthread_mutex_lock(mutex)
            if pending.subtract(1, ordering: .releasing).newValue == 0 { pthread_cond_signal(finished) }
            pthread_mutex_unlock(mutex)
        }
    }
}

/// `body`'s function and context words (`CPartJob`): the closure itself, not a copy, so valid
/// exactly as long as `body` is. Swift passes a closure argument as these two words.
@_silgen_name("disttrain_part_job_make")
private func partJob(_ body: (Int) -> Void) -> disttrain_part_job
