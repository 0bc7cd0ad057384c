namespace Dicc.Engine.Backends.Cuda.Runtime;

/// <summary>A CUDA, NVRTC, cuBLAS or cuDNN call failed: the API, the status name and the library's text.</summary>
internal class CudaException : Exception
{
    public CudaException(string api, string statusName, int statusCode, string description, string? detail = null)
        : base(Format(api, statusName, statusCode, description, detail))
    {
        Api = api;
        StatusName = statusName;
        StatusCode = statusCode;
    }

    public CudaException(string message) : base(message)
    {
        Api = "";
        StatusName = "";
    }

    public CudaException(string message, Exception inner) : base(message, inner)
    {
        Api = "";
        StatusName = "";
    }

    /// <summary>The function that failed, e.g. "cuMemAlloc_v2".</summary>
    public string Api { get; }

    /// <summary>The status as the library names it, e.g. "CUDA_ERROR_OUT_OF_MEMORY".</summary>
    public string StatusName { get; }

    /// <summary>The numeric status.</summary>
    public int StatusCode { get; }

    private static string Format(string api, string name, int code, string description, string? detail)
    {
        string text = $"{api} failed: {name} ({code})";
        if (!string.IsNullOrWhiteSpace(description) && description != name) text += $": {description}";
        if (!string.IsNullOrWhiteSpace(detail)) text += $" [{detail.Trim()}]";
        return text;
    }
}

/// <summary>CUDA C source did not compile; the message carries the NVRTC log.</summary>
internal sealed class CudaCompilationException : CudaException
{
    public CudaCompilationException(string programName, string log, string options)
        : base($"NVRTC could not compile {programName} (options: {options}):{Environment.NewLine}{log.TrimEnd()}")
    {
        ProgramName = programName;
        Log = log;
    }

    public string ProgramName { get; }
    public string Log { get; }
}
