// The ForwardOnly switch's exclusion between threads, on a recording switch (machine-independent): a backward region waits
// for another thread's forward region and runs with the switch off; forwards wait behind a pending backward; nesting on one
// thread never waits. Before this, a detection on one thread left oneDNN on for a backward pass on another (the CI failure
// of ConvolutionFaultShapeTests on the AMD EPYC without cache sizes: input gradient 17% off).
using RetinaSharp.Runtime;

namespace RetinaSharp.Tests.Foundation;

public class OneDnnSwitchTests
{
    private sealed class Recorder
    {
        private readonly object _lock = new();
        public bool On;
        public readonly List<bool> Log = [];
        public void Set(bool on) { lock (_lock) { On = on; Log.Add(on); } }
    }

    private static void SpinUntil(Func<bool> condition, string what)
    {
        // Progress, not time, is what is asserted: the wait only bounds a hang (the assertion is on the state reached).
        Assert.True(SpinWait.SpinUntil(condition, TimeSpan.FromMinutes(1)), what);
    }

    private static Thread Start(Action body)
    {
        var t = new Thread(() => body()) { IsBackground = true };
        t.Start();
        return t;
    }

    [Fact]
    public void Forward_turns_on_and_the_last_close_turns_off()
    {
        var r = new Recorder();
        var s = new OneDnnSwitch(r.Set);
        s.EnterForward();
        s.EnterForward(); // nested
        Assert.True(r.On);
        s.ExitForward();
        Assert.True(r.On);
        s.ExitForward();
        Assert.False(r.On);
        Assert.Equal([true, false], r.Log);
    }

    [Fact]
    public void Backward_inside_own_forward_turns_off_then_back_on()
    {
        var r = new Recorder();
        var s = new OneDnnSwitch(r.Set);
        s.EnterForward();
        s.EnterBackward(); // does not wait for its own thread's forward region
        Assert.False(r.On);
        s.EnterForward();  // nested forward inside the backward: stays off
        Assert.False(r.On);
        s.ExitForward();
        s.ExitBackward();
        Assert.True(r.On);
        s.ExitForward();
        Assert.False(r.On);
        Assert.Equal([true, false, true, false], r.Log);
    }

    [Fact]
    public void Backward_waits_for_another_threads_forward_and_runs_with_the_switch_off()
    {
        var r = new Recorder();
        var s = new OneDnnSwitch(r.Set);
        using var forwardOpen = new ManualResetEventSlim();
        using var releaseForward = new ManualResetEventSlim();
        var forward = Start(() =>
        {
            s.EnterForward();
            forwardOpen.Set();
            releaseForward.Wait();
            s.ExitForward();
        });
        forwardOpen.Wait();
        bool? onDuringBackward = null;
        var backward = Start(() =>
        {
            s.EnterBackward();
            onDuringBackward = r.On;
            s.ExitBackward();
        });
        SpinUntil(() => s.BackwardWaiting == 1, "the backward region never started waiting");
        Assert.True(backward.IsAlive);
        Assert.Null(onDuringBackward);
        Assert.True(r.On);
        // A new forward on a third thread queues behind the waiting backward (no starvation).
        var late = Start(() => { s.EnterForward(); s.ExitForward(); });
        releaseForward.Set();
        foreach (var t in new[] { forward, backward, late }) Assert.True(t.Join(TimeSpan.FromMinutes(1)), "regions deadlocked");
        Assert.False(onDuringBackward);
        Assert.Equal(0, s.ForwardDepth);
        Assert.False(r.On);
    }

    [Fact]
    public void Forward_kernels_inside_backward_turn_on_for_their_span_only()
    {
        var r = new Recorder();
        var s = new OneDnnSwitch(r.Set);
        s.EnterBackward();
        Assert.False(s.EnterForwardKernels()); // already inside a backward region
        Assert.True(r.On);
        s.ExitForwardKernels(false);
        Assert.False(r.On);
        s.ExitBackward();
        // A plain loss.backward() (no backward region): the kernel region opens one itself and closes it.
        Assert.True(s.EnterForwardKernels());
        Assert.True(r.On);
        s.ExitForwardKernels(true);
        Assert.False(r.On);
        Assert.Throws<InvalidOperationException>(s.ExitBackward);
        Assert.Equal([true, false, true, false], r.Log);
    }

    [Fact]
    public void Backward_regions_of_two_threads_run_one_at_a_time()
    {
        var r = new Recorder();
        var s = new OneDnnSwitch(r.Set);
        using var inside = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var first = Start(() =>
        {
            s.EnterBackward();
            s.EnterForwardKernels(); // oneDNN on for this thread's convolution gradients
            inside.Set();
            release.Wait();
            s.ExitForwardKernels(false);
            s.ExitBackward();
        });
        inside.Wait();
        bool? onWhenSecondStarts = null;
        var second = Start(() =>
        {
            s.EnterBackward();
            onWhenSecondStarts = r.On;
            s.ExitBackward();
        });
        SpinUntil(() => s.BackwardWaiting == 1, "the second backward region never started waiting");
        Assert.True(second.IsAlive);
        Assert.Null(onWhenSecondStarts);
        release.Set();
        foreach (var t in new[] { first, second }) Assert.True(t.Join(TimeSpan.FromMinutes(1)), "regions deadlocked");
        Assert.False(onWhenSecondStarts); // the second thread's ATen backward never saw the first one's kernels on
    }

    [Fact]
    public void Closing_a_region_that_is_not_open_throws()
    {
        var s = new OneDnnSwitch(_ => { });
        Assert.Throws<InvalidOperationException>(s.ExitForward);
        Assert.Throws<InvalidOperationException>(s.ExitBackward);
        Assert.Throws<InvalidOperationException>(() => s.ExitForwardKernels(false));
    }
}
