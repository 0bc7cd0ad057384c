namespace Dicc.Engine.Data;

/// <summary>Output paths of the data commands: a failure to write is the user's path at fault, named in one line.</summary>
internal static class DataOutput
{
    private static bool IsIo(Exception e) => e is IOException or UnauthorizedAccessException;

    /// <summary>Runs <paramref name="write"/>; I/O failures become a <see cref="DataArgumentException"/> for the "out" option naming the path.</summary>
    public static T Writing<T>(string path, Func<T> write)
    {
        try
        {
            return write();
        }
        catch (Exception e) when (IsIo(e))
        {
            throw new DataArgumentException("out", $"cannot write {path}: {e.Message}");
        }
        catch (AggregateException e) when (e.InnerExceptions.All(IsIo))
        {
            throw new DataArgumentException("out", $"cannot write {path}: {e.InnerExceptions[0].Message}");
        }
    }
}
