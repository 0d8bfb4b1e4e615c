// Training augmentation sizes from the command line (--scales): bounded so a typo fails with a message, not an OOM.
namespace RetinaSharp.Tests.BadInput;

/// <summary>Absurd augmentation sizes (a typo such as 100000) are refused with the argument and value, before any allocation.</summary>
public sealed class AugmentationBadInputTests
{
    [Fact]
    public void Absurd_shorter_side_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new RetinaSharp.Data.AugmentationOptions(ShorterSideScales: [640, 100_000]).Validate());
        Assert.Equal("ShorterSideScales", e.ParamName);
        Assert.Contains("100000", e.Message);
        e = Assert.Throws<ArgumentException>(() => new RetinaSharp.Data.AugmentationOptions(ShorterSideRange: (640, int.MaxValue)).Validate());
        Assert.Equal("ShorterSideRange", e.ParamName);
        Assert.Contains(int.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
    }
}
